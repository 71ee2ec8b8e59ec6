"""A link that calls the `FederationService` directly: no certificates, no serialization, no threads.

The simulator runs many collaborators in threads of one process over it. It keeps the contract of the
gRPC link (`transport.client.AggregatorClient`), tested by one suite against both:
- the same checks in the same order: sender allowed, plan hash, result fields, each tensor's name,
  dtype and shape against the model of the round, then the service's own; refusals raise the same
  `AggregatorRefused` with the same code;
- `get_model` returns writable arrays of their own (the service's model is never aliased);
- `send_result` runs open_result -> (destination ->) add per tensor -> commit, and aborts the sink on
  any error; a lossy compression pipeline encodes and decodes each tensor, so that results equal those
  of a gRPC federation with the same pipeline;
- task kwargs travel as JSON does over the wire, so no collaborator shares a dict with the aggregator.
An unexpected exception of the service propagates as itself (over gRPC it is an INTERNAL error).
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable, Collection, Mapping
from dataclasses import replace
from typing import TypeVar

import numpy as np

from openfl_cli.errors import FxError
from openfl_cli.tensors.codec import as_array, dtype_from_name, dtype_name
from openfl_cli.tensors.pipelines import RAW, NoCompressionPipeline, TensorEncoder, decode_tensor
from openfl_cli.transport.auth import plan_refusal
from openfl_cli.transport.core.metadata import MAX_VALUE_CHARS
from openfl_cli.transport.limits import Limits
from openfl_cli.transport.messages import (
    AggregatorRefused,
    PingReply,
    RefusalCode,
    Refused,
    SendReport,
    StreamError,
    TaskAssignment,
    TaskFailure,
    TaskSpec,
    one_line,
)
from openfl_cli.transport.result_checks import check_result_fields, check_tensor_matches
from openfl_cli.transport.service import FederationService, ResultSink, abort_sink

R = TypeVar("R")

TARGET = "in-process"


class InProcessLink:
    """`collaborator`'s link to `service` in this process.

    `allowed`: the roster; any other name is refused (NOT_AUTHORIZED) on every call, as the aggregator's
    authorizer does. `plan_hash`: the plan the collaborator runs, checked against the service's on every
    call (None: not checked). `pipeline`: the upload compression. `max_poll_seconds` bounds a long poll
    as the gRPC server does.
    """

    def __init__(
        self,
        service: FederationService,
        collaborator: str,
        *,
        plan_hash: str | None = None,
        allowed: Collection[str] | None = None,
        pipeline: TensorEncoder | None = None,
        limits: Limits | None = None,
        max_poll_seconds: float = 60.0,
    ) -> None:
        self.target = TARGET
        self.collaborator = collaborator
        self.pipeline = pipeline or NoCompressionPipeline()
        self.limits = limits or Limits()
        self._service = service
        self._plan_hash = plan_hash
        self._allowed = frozenset(allowed) if allowed is not None else None
        self._max_poll = max_poll_seconds
        self._closed = False

    # -- AggregatorLink --------------------------------------------------------------------------------

    def ping(self) -> PingReply:
        return self._answer(lambda: self._service.ping(self.collaborator))

    def get_tasks(self, wait_seconds: float) -> TaskAssignment:
        """Long poll: returns as soon as the service has work for us (or after `wait_seconds`)."""
        wait = float(wait_seconds)
        wait = min(max(wait, 0.0), self._max_poll) if math.isfinite(wait) else 0.0
        return self._answer(lambda: _detached(self._service.get_tasks(self.collaborator, wait)))

    def get_model(self, round_number: int) -> dict[str, np.ndarray]:
        """The global model of `round_number`: a copy of each tensor (C order, its wire dtype)."""
        return self._answer(
            lambda: {
                name: np.array(array, dtype=dtype_from_name(dtype_name(array.dtype)), order="C", copy=True)
                for name, array in self._service.model_for(self.collaborator, round_number).items()
            }
        )

    def send_result(
        self,
        round_number: int,
        task_name: str,
        metrics: Mapping[str, float],
        sample_count: int,
        tensors: Mapping[str, np.ndarray],
    ) -> SendReport:
        """Fold one task result into the service. `sent_bytes` counts the encoded payloads (what the
        wire would carry, less its framing)."""
        arrays = {name: as_array(np.asarray(array)) for name, array in tensors.items()}
        dtypes = {name: dtype_name(array.dtype) for name, array in arrays.items()}  # refuses odd dtypes
        values = {name: float(value) for name, value in metrics.items()}
        count = operator.index(sample_count)
        return self._answer(lambda: self._fold(round_number, task_name, values, count, arrays, dtypes))

    def report_failure(self, failure: TaskFailure) -> None:
        """Tell the service that a task failed; the reason is cut to one line as the wire does."""
        detached = replace(failure, reason=one_line(failure.reason))

        def report() -> None:
            check_result_fields(detached.round_number, detached.task_name, {}, self.limits)
            self._service.report_failure(self.collaborator, detached)

        self._answer(report)

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> InProcessLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers ---------------------------------------------------------------------------------------

    def _answer(self, call: Callable[[], R]) -> R:
        """Admit the collaborator, run `call`, and raise refusals as the gRPC client does."""
        try:
            self._admit()
            return call()
        except AggregatorRefused:
            raise
        except Refused as refused:
            raise AggregatorRefused(refused.code, refused.reason) from None
        except StreamError as exc:
            raise AggregatorRefused(RefusalCode.INVALID, str(exc)) from None

    def _admit(self) -> None:
        if self._closed:
            raise FxError(f"the in-process link of {self.collaborator!r} is closed")
        name = self.collaborator
        if not name or len(name) > MAX_VALUE_CHARS:
            raise Refused(RefusalCode.NOT_AUTHORIZED, "the call does not name its sender")
        if self._allowed is not None and name not in self._allowed:
            raise Refused(RefusalCode.NOT_AUTHORIZED, f"{name!r} is not in the roster of this federation")
        if self._plan_hash is not None:
            refusal = plan_refusal(name, self._plan_hash, self._service.plan_hash)
            if refusal is not None:
                raise refusal

    def _fold(
        self,
        round_number: int,
        task_name: str,
        metrics: dict[str, float],
        sample_count: int,
        arrays: dict[str, np.ndarray],
        dtypes: dict[str, str],
    ) -> SendReport:
        check_result_fields(round_number, task_name, metrics, self.limits)
        model = self._service.model_for(self.collaborator, round_number)
        for name, array in arrays.items():
            check_tensor_matches(name, dtypes[name], tuple(int(dim) for dim in array.shape), model)
        sink = self._service.open_result(
            self.collaborator, round_number, task_name, metrics, sample_count, list(arrays)
        )
        raw = sent = 0
        try:
            for name, array in arrays.items():
                if self.pipeline.is_lossless:  # decoding would give back these very values
                    value = np.asarray(array, dtype=dtype_from_name(dtypes[name]), order="C")
                    raw += value.nbytes
                    sent += value.nbytes
                    _deliver(sink, name, value, RAW)
                    continue
                encoded = self.pipeline.encode(array)
                raw += encoded.raw_nbytes
                sent += encoded.nbytes
                _deliver(sink, name, decode_tensor(encoded, max_nbytes=encoded.raw_nbytes), encoded.encoding)
            sink.commit()
        except BaseException as exc:
            abort_sink(sink, exc, f"{self.collaborator} (in process)")
            raise
        return SendReport(raw_bytes=raw, sent_bytes=sent)


def _deliver(sink: ResultSink, name: str, value: np.ndarray, encoding: str) -> None:
    """`sink.add`, into the array the sink offers for a raw tensor when it fits (as the gRPC server's
    assembler does), so that the sink keeps it without another copy."""
    if encoding == RAW and value.nbytes:
        target = sink.destination(name)
        if (
            target is not None
            and target.dtype == value.dtype
            and target.shape == value.shape
            and target.flags.c_contiguous
            and target.flags.writeable
        ):
            np.copyto(target, value)
            value = target
    sink.add(name, value)


def _detached(assignment: TaskAssignment) -> TaskAssignment:
    """`assignment` with task kwargs of its own, as JSON carries them over the wire."""
    if not assignment.tasks:
        return assignment
    tasks = tuple(
        TaskSpec(task.name, task.function, json.loads(json.dumps(task.kwargs))) for task in assignment.tasks
    )
    return replace(assignment, tasks=tasks)
