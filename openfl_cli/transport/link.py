"""What a collaborator needs from its link to the aggregator, whatever carries the calls.

`transport.client.AggregatorClient` (gRPC over mutual TLS) and `transport.inprocess.InProcessLink`
(direct calls, for the simulator) both implement `OpenLink`; one contract suite tests them alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

from openfl_cli.transport.messages import PingReply, SendReport, TaskAssignment, TaskFailure

if TYPE_CHECKING:
    import numpy as np


class AggregatorLink(Protocol):
    """The calls of the collaborator's task loop. Refusals raise `Refused` (`AggregatorRefused`)."""

    def ping(self) -> PingReply: ...
    def get_tasks(self, wait_seconds: float) -> TaskAssignment: ...
    def get_model(self, round_number: int) -> dict[str, np.ndarray]: ...
    def send_result(
        self,
        round_number: int,
        task_name: str,
        metrics: Mapping[str, float],
        sample_count: int,
        tensors: Mapping[str, np.ndarray],
    ) -> SendReport: ...
    def report_failure(self, failure: TaskFailure) -> None: ...


class OpenLink(AggregatorLink, Protocol):
    """A link as its owner holds it: whom it speaks for, where to, and how to let it go."""

    target: str
    collaborator: str

    def close(self) -> None: ...
