"""Fixtures for FedJob tests: a training script on disk and a small job using it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from openfl_cli.job import FedAvg, FedJob, ScriptRunner
from openfl_cli.job.job import JobCtx


class ArrayModel:
    """A stand-in initial model (no framework): its weights go in through the developer API."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays

    def add_to_fed_job(self, job: FedJob, ctx: JobCtx) -> str:
        return job.add_initial_model(self.arrays, ctx)


def weights() -> dict[str, np.ndarray]:
    return {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.zeros(2, dtype=np.float32)}


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "code" / "train.py"
    path.parent.mkdir()
    path.write_text("print('training')\n")
    return path


def make_job(
    script: Path, name: str = "demo", n_clients: int = 2, rounds: int = 2, **job_args: object
) -> FedJob:
    job = FedJob(name=name, **job_args)  # type: ignore[arg-type]
    job.to_server(FedAvg(num_clients=n_clients, num_rounds=rounds))
    job.to_server(ArrayModel(weights()))
    job.to_clients(ScriptRunner(script=str(script), script_args="--epochs 1"))
    return job
