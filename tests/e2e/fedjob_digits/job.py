"""The seed's `cifar10_fedavg` job with the FedJob API, for the bundled digits: a FedAvg controller, the
initial model and a model selector to the server, the training script (and its model's module) to the
clients. Used by the FedJob tests and `bench/fedjob.py`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

SRC = Path(__file__).resolve().parent / "src"


def digits_job(
    n_clients: int,
    num_rounds: int = 2,
    *,
    launch_external_process: bool = False,
    hidden: int = 32,
    extra_args: str = "",
    name: str = "digits_fedavg",
) -> Any:
    import torch

    from openfl_cli.job import FedAvg, FedJob, IntimeModelSelector, PTModel, ScriptRunner

    if str(SRC) not in sys.path:
        sys.path.insert(0, str(SRC))
    from net import Net

    torch.manual_seed(0)
    job = FedJob(name=name, min_clients=n_clients)
    job.to_server(FedAvg(num_clients=n_clients, num_rounds=num_rounds))
    job.to_server(PTModel(Net(hidden)))
    job.to_server(IntimeModelSelector(key_metric="accuracy"))
    runner = ScriptRunner(
        script=str(SRC / "digits_fl.py"),
        script_args=f"--batch_size 32 --n_clients {n_clients} --hidden {hidden} {extra_args}".strip(),
        launch_external_process=launch_external_process,
    )
    job.to_clients(runner)
    job.to_clients(str(SRC / "net.py"))  # a resource: the script imports it
    return job
