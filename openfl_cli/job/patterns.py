"""Job patterns: `FedJob` subclasses that send their usual objects to the server in `__init__`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from openfl_cli.job.controllers import FedAvg
from openfl_cli.job.job import FedJob
from openfl_cli.job.models import wrap_model
from openfl_cli.job.selectors import IntimeModelSelector


class FedAvgJob(FedJob):
    """Federated averaging of `initial_model` (a torch.nn.Module or a keras.Model, told apart without
    importing either framework) over `n_clients` clients (`site-1..site-N`) for `num_rounds` rounds,
    keeping as best the model that scored best on `key_metric`. Send the clients their script:

        job = FedAvgJob(name="cifar10_fedavg", num_rounds=2, n_clients=2, initial_model=Net())
        job.to_clients(ScriptRunner(script="src/cifar10_fl.py"))
    """

    def __init__(
        self,
        name: str,
        num_rounds: int,
        n_clients: int,
        initial_model: Any,
        min_clients: int | None = None,
        mandatory_clients: Sequence[str] | None = None,
        key_metric: str = "accuracy",
    ) -> None:
        super().__init__(name, min_clients if min_clients is not None else 1, mandatory_clients)
        self.n_clients = n_clients
        self.to_server(FedAvg(num_clients=n_clients, num_rounds=num_rounds))
        self.to_server(wrap_model(initial_model))
        self.to_server(IntimeModelSelector(key_metric=key_metric))
