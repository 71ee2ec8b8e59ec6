"""Objects the script runner builds by class path in the tests (filters, an executor) and the tiny
training scripts it drives."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np

from openfl_cli.client import FLModel

SEEN: list[str] = []  # what the recording filters saw, in order


class Scale:
    """Multiplies every param; refuses to have changed the global model in place."""

    def __init__(self, factor: float, tag: str = "scale") -> None:
        self.factor = factor
        self.tag = tag

    def process(self, model: FLModel, global_params: Mapping[str, np.ndarray]) -> FLModel:
        assert all(not array.flags.writeable for array in global_params.values())
        SEEN.append(self.tag)
        params = {name: value * self.factor for name, value in (model.params or {}).items()}
        return replace(model, params=params)


class Shift:
    def __init__(self, amount: float, tag: str = "shift") -> None:
        self.amount = amount
        self.tag = tag

    def process(self, model: FLModel, global_params: Mapping[str, np.ndarray]) -> FLModel:
        SEEN.append(self.tag)
        params = {name: value + self.amount for name, value in (model.params or {}).items()}
        return replace(model, params=params)


class Doubler:
    """An executor: answers every task here, in the collaborator's thread."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset

    def execute(self, task_name: str, model: FLModel, site_name: str) -> FLModel:
        params = {name: value * 2 + self.offset for name, value in (model.params or {}).items()}
        return FLModel(params=params, metrics={"seen": float(model.current_round or 0)})


NUMPY_SCRIPT = """
import argparse
import sys

import numpy as np

import openfl_cli.client as flare

parser = argparse.ArgumentParser()
parser.add_argument("--step", type=float, default=1.0)
parser.add_argument("--diff", action="store_true")
parser.add_argument("--fail-in-round", type=int, default=-1)
parser.add_argument("--drop", default="")

flare.init()
rounds = 0
while flare.is_running():
    model = flare.receive()
    if model is None:
        break
    args = parser.parse_args()  # every round: sys.argv must stay this thread's
    if flare.is_evaluate():
        flare.send(flare.FLModel(metrics={"accuracy": 0.5}, meta={"NUM_STEPS_CURRENT_ROUND": 3}))
        continue
    rounds += 1
    if model.current_round == args.fail_in_round:
        raise ValueError("disk on fire")
    if args.diff:
        params = {k: np.full_like(v, args.step) for k, v in model.params.items()}
    else:
        params = {k: v + args.step for k, v in model.params.items()}
    if args.drop:
        del params[args.drop]
    flare.log("loss", 1.0 / rounds, step=model.current_round)
    flare.send(
        flare.FLModel(
            params=params,
            params_type=flare.ParamsType.DIFF if args.diff else flare.ParamsType.FULL,
            metrics={
                "accuracy": float(model.current_round),
                "rounds_seen": rounds,
                "step": args.step,
                "total": float(model.total_rounds or 0),
            },
            meta={"NUM_STEPS_CURRENT_ROUND": 10, "site": flare.get_site_name()},
        )
    )
"""


def write_script(folder: Path, name: str = "train.py", source: str = NUMPY_SCRIPT) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(source))
    return path
