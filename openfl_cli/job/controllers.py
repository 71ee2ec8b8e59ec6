"""Controllers: the server's workflow. The core runs one workflow, federated averaging rounds, so a
controller here says how many rounds, when a round may close (the straggler policy) and how results
are combined (absent: the core's weighted average)."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from openfl_cli.errors import UsageError
from openfl_cli.federation.specs import ComponentSpec
from openfl_cli.job.arguments import KeepsArguments
from openfl_cli.plan import aliases

STRAGGLER_KEY = ("straggler_handling_policy",)


@dataclass(frozen=True)
class Workflow:
    rounds: int
    straggler: ComponentSpec
    aggregation: ComponentSpec | None = None  # for the `train` task; None: weighted average


class Controller(KeepsArguments, ABC):
    """Base of server workflows: `workflow` turns the controller and the job's clients into the
    aggregator's settings."""

    @abstractmethod
    def workflow(self, sites: Sequence[str], min_clients: int, mandatory_clients: Sequence[str]) -> Workflow:
        """The aggregator's rounds, straggler policy and aggregation for a job with `sites`."""


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"FedAvg: {name} must be an integer >= 1, got {value!r}")
    return value


class FedAvg(Controller):
    """Federated averaging: each of `num_rounds` rounds sends the global model to every client, and
    the sample-weighted average of their results becomes the next global model.

    `num_clients` must be the number of the job's clients: the core trains every client in every round
    (FLARE samples `num_clients` of them; here that would silently train fewer or wait for clients
    that do not exist, so it is refused at export).

    A round waits for every client, as FLARE's FedAvg does. With `straggler_cutoff_time` (seconds) it
    may close after that long with whoever reported, provided at least the job's `min_clients` did
    and every one of its `mandatory_clients` did (the core's CutoffTimePolicy, or this package's
    MandatorySitesPolicy when there are mandatory clients).
    """

    def __init__(
        self, num_clients: int = 3, num_rounds: int = 5, straggler_cutoff_time: float | None = None
    ) -> None:
        self.num_clients = _positive_int("num_clients", num_clients)
        self.num_rounds = _positive_int("num_rounds", num_rounds)
        if straggler_cutoff_time is not None and (
            isinstance(straggler_cutoff_time, bool)
            or not isinstance(straggler_cutoff_time, (int, float))
            or math.isnan(straggler_cutoff_time)
            or straggler_cutoff_time <= 0
        ):
            raise ValueError(
                "FedAvg: straggler_cutoff_time must be a number of seconds > 0,"
                f" got {straggler_cutoff_time!r}"
            )
        self.straggler_cutoff_time = straggler_cutoff_time

    def workflow(self, sites: Sequence[str], min_clients: int, mandatory_clients: Sequence[str]) -> Workflow:
        if self.num_clients != len(sites):
            plural = "s" * (len(sites) != 1)
            raise UsageError(
                f"FedAvg(num_clients={self.num_clients}): the job has {len(sites)} client{plural}"
                f" ({', '.join(sites)}); every client trains in every round here, so make num_clients"
                f" {len(sites)}"
            )
        return Workflow(self.num_rounds, self.straggler(len(sites), min_clients, mandatory_clients))

    def straggler(self, clients: int, min_clients: int, mandatory_clients: Sequence[str]) -> ComponentSpec:
        """The core's policy for this controller: wait for all; with a timeout, the cutoff policy with
        the job's minimum (and, with mandatory clients, this package's policy that waits for them)."""
        if self.straggler_cutoff_time is None or min_clients >= clients:
            return ComponentSpec(STRAGGLER_KEY, aliases.WAIT_FOR_ALL, {})
        settings: dict[str, object] = {
            "straggler_cutoff_time": float(self.straggler_cutoff_time),
            "minimum_reporting": min_clients,
        }
        if mandatory_clients:
            settings["mandatory_sites"] = list(mandatory_clients)
            return ComponentSpec(STRAGGLER_KEY, "openfl_cli.job.straggler.MandatorySitesPolicy", settings)
        return ComponentSpec(STRAGGLER_KEY, aliases.CUTOFF, settings)
