"""What the director's gRPC server calls: the director's side of the protocol, free of transport detail.

`openfl_cli.director.director.Director` implements both. The server admits every call first (the
certificate's common name is the claimed sender, and its unit the service's role), so these methods
receive a trusted envoy or experimenter name.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Protocol

from openfl_cli.proto import director_pb2 as dpb

if TYPE_CHECKING:
    import numpy as np

    from openfl_cli.transport.director.state_stream import ReceivedState

# (header, pickle, arrays) of a state to send
OutgoingState = tuple[dpb.StateHeader, bytes, Mapping[str, "np.ndarray"]]


class EnvoyLinkService(Protocol):
    def health(self, envoy: str, report: dpb.HealthReport) -> float:
        """Record a health report; return the period of the next one, in seconds."""

    def wait_work(self, envoy: str, wait_seconds: float) -> dpb.WorkItem:
        """Long poll: return as soon as there is work for `envoy`, else an empty item after the wait."""

    def decide(self, envoy: str, decision: dpb.Decision) -> None: ...

    def chain_state(self, envoy: str, experiment: str, task: str) -> OutgoingState:
        """The state a chain task starts from; raises `Refused` for a task that is not this envoy's."""

    def chain_result(self, envoy: str, result: ReceivedState) -> None: ...

    def output(self, envoy: str, batch: dpb.OutputBatch) -> None: ...


class ExperimentsService(Protocol):
    def list_envoys(self, user: str) -> dpb.EnvoyList: ...

    def submit(self, user: str, submission: ReceivedState) -> dpb.Submitted: ...

    def watch(self, user: str, experiment: str) -> Iterator[dpb.ExperimentEvent]:
        """Every event of the experiment from its start, then the new ones as they happen, until it ends."""

    def result(self, user: str, experiment: str) -> OutgoingState:
        """The flow's final attributes; raises `Refused` before the experiment has ended well."""
