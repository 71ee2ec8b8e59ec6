"""The Client API a training script imports (`import openfl_cli.client as flare`), after NVIDIA FLARE's.

    flare.init()
    while flare.is_running():
        model = flare.receive()          # the global model of this round, or None once the job ended
        if model is None:
            break
        ...train on model.params...
        flare.send(flare.FLModel(params=new_params, metrics={"accuracy": acc},
                                 meta={"NUM_STEPS_CURRENT_ROUND": steps}))

Every function acts on the current context: the session the task runner (`ScriptTaskRunner`) bound to
the script's thread, or, in a script it started as a child process, the one the environment names.
Outside either they raise RuntimeError. A thin facade: the work is in `session.py`.
"""

from __future__ import annotations

from typing import Any

from openfl_cli.client.model import FLModel, ParamsType
from openfl_cli.client.session import NO_CONTEXT, current

__all__ = [
    "NO_CONTEXT",
    "FLModel",
    "ParamsType",
    "get_job_id",
    "get_site_name",
    "init",
    "is_evaluate",
    "is_running",
    "is_submit_model",
    "is_train",
    "log",
    "receive",
    "send",
    "system_info",
]


def init(rank: int | str | None = None) -> None:
    """Connect to the runner (ex-process; in-process the thread is connected already). With several
    ranks (one process per GPU), only rank 0 should receive and send."""
    current().init(rank)


def receive(timeout: float | None = None) -> FLModel | None:
    """The model of the next task (params in the script's framework type); None once the job ended."""
    return current().receive(timeout)


def send(model: FLModel, clear_cache: bool = True) -> None:
    """Answer the task received last. `clear_cache=False` keeps its model for another `receive()`."""
    current().send(model, clear_cache)


def is_running() -> bool:
    """False once the job has ended (then `receive()` returns None)."""
    return current().is_running()


def is_train() -> bool:
    """Whether the task received last asks for training."""
    return current().current_task() == "train"


def is_evaluate() -> bool:
    """Whether the task received last asks only for metrics of the model it carries."""
    return current().current_task() == "evaluate"


def is_submit_model() -> bool:
    """Always False: fx selects the best model on the aggregator, it never asks a site for one."""
    current()
    return False


def get_site_name() -> str:
    return current().site_name


def get_job_id() -> str:
    return current().job_id


def system_info() -> dict[str, str]:
    session = current()
    return {"site_name": session.site_name, "job_id": session.job_id}


def log(key: str, value: Any, data_type: Any = "scalar", **kwargs: Any) -> None:
    """Record a metric of this site: `data_type` "scalar"/"metric" for one number, "scalars"/"metrics"
    for a mapping of them (reported as key/name); `step=` and other keyword arguments travel along.
    The runner reports them through its metric callback and its log."""
    current().log(key, value, data_type, **kwargs)
