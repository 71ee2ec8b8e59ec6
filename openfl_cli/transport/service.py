"""What the gRPC server calls: the aggregator's side of the protocol, free of any transport detail.

`openfl_cli.federation.aggregator.Aggregator` implements it. The server authenticates every call
(certificate common name == claimed sender, sender in cols.yaml and not revoked, plan hash equal)
before it calls any of these methods, so they receive a trusted collaborator name.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

from openfl_cli.transport.messages import PingReply, Refused, StreamError, TaskAssignment, TaskFailure

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)


class ResultSink(Protocol):
    """Receives one task result tensor by tensor, as the stream delivers them."""

    def destination(self, name: str) -> np.ndarray | None:
        """An array (C-contiguous, writable, the tensor's dtype and shape) to receive the raw tensor
        `name` into, which `add` then keeps without a copy; or None (the transport's own buffer)."""

    def add(self, name: str, array: np.ndarray) -> None:
        """Validate and fold one tensor. `array` may be a view over a transport buffer that is reused
        after the call returns, unless it is the array `destination` gave for `name`. Raises `Refused`
        (INVALID) for a wrong name, dtype, shape or non-finite values; the result is then aborted by
        the caller."""

    def commit(self) -> None:
        """All tensors arrived: the result counts. Raises `Refused` if tensors are missing."""

    def abort(self, reason: str) -> None:
        """The stream broke or a tensor was refused: undo whatever this result contributed."""


class FederationService(Protocol):
    plan_hash: str

    def ping(self, collaborator: str) -> PingReply: ...

    def get_tasks(self, collaborator: str, wait_seconds: float) -> TaskAssignment:
        """Long poll: return as soon as the collaborator has work (or the experiment ends), else WAIT
        after `wait_seconds`."""

    def model_for(self, collaborator: str, round_number: int) -> Mapping[str, np.ndarray]:
        """The global model of `round_number` to send (with optimizer tensors for CONTINUE_GLOBAL).
        Raises `Refused` (LATE) when that round is not the current one."""

    def report_failure(self, collaborator: str, failure: TaskFailure) -> None:
        """A task of the collaborator failed (it says why). Raises `Refused` (LATE) for a round that
        is not the current one, UNKNOWN_TASK for a task it was not given."""

    def open_result(
        self,
        collaborator: str,
        round_number: int,
        task_name: str,
        metrics: Mapping[str, float],
        sample_count: int,
        tensor_names: list[str],
    ) -> ResultSink:
        """Start receiving a result. Raises `Refused` for a closed round, a task not assigned to this
        collaborator, a duplicate, bad metrics or a negative sample count."""


def abort_sink(sink: ResultSink, exc: BaseException, peer: str) -> None:
    """Undo a result that did not arrive whole; a failing abort is logged, never raised over `exc`."""
    reason = str(exc) if isinstance(exc, (Refused, StreamError)) else f"stream broke ({type(exc).__name__})"
    try:
        sink.abort(reason)
    except Exception:
        log.exception("aborting a result from %s failed", peer)
