"""One incoming task result: each tensor is checked and handed to the task's aggregation function as it
arrives (the transport reuses its buffer), so a result is never held whole by the aggregator itself.

The aggregation function stages what it needs until `commit`; `abort` removes the staged part.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import numpy as np

from openfl_cli.federation.aggregation.base import ContributionError
from openfl_cli.transport.messages import RefusalCode, Refused

if TYPE_CHECKING:
    from openfl_cli.federation.aggregation.function import AggregationFunction

log = logging.getLogger(__name__)

FINITE_BLOCK = 1 << 20  # elements per step of the element-wise finiteness check


def check_tensor(name: str, array: np.ndarray, reference: np.ndarray | None) -> None:
    """Raise Refused(INVALID) unless `array` matches the global tensor and is finite."""
    if reference is None:
        raise Refused(RefusalCode.INVALID, f"tensor {name!r} is not part of the global model")
    if array.dtype != reference.dtype or array.shape != reference.shape:
        raise Refused(
            RefusalCode.INVALID,
            f"tensor {name!r} is {array.dtype} {list(array.shape)}, the model has"
            f" {reference.dtype} {list(reference.shape)}",
        )
    if array.dtype.kind in "fc" and not all_finite(array):
        raise Refused(RefusalCode.INVALID, f"tensor {name!r} holds NaN or infinite values")


def all_finite(array: np.ndarray) -> bool:
    """No NaN or infinity in `array` (floating or complex), without an array-sized temporary.

    A sum is NaN or infinite whenever one of its terms is (additions never turn those back into finite
    numbers), so a finite sum proves every element finite in one read pass. Only a sum that overflowed
    from finite values needs the element-wise check, which runs block by block."""
    flat = array.reshape(-1)
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.add.reduce(flat)):
            return True
    return all(
        bool(np.isfinite(flat[start : start + FINITE_BLOCK]).all())
        for start in range(0, flat.size, FINITE_BLOCK)
    )


def check_metrics(metrics: Mapping[str, float], sample_count: int) -> None:
    if isinstance(sample_count, bool) or not isinstance(sample_count, int) or sample_count < 0:
        raise Refused(RefusalCode.INVALID, f"sample count must be an integer >= 0, got {sample_count!r}")
    for name, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise Refused(RefusalCode.INVALID, f"metric {name!r} must be a finite number, got {value!r}")


class ResultSink:
    """Implements `transport.service.ResultSink` for one (collaborator, round, task)."""

    def __init__(
        self,
        *,
        collaborator: str,
        round_number: int,
        task: str,
        tensor_names: list[str],
        model: Mapping[str, np.ndarray],
        function: AggregationFunction,
        weight: int,
        is_delta: bool,
        on_commit: Callable[[ResultSink], None],
        on_abort: Callable[[ResultSink, str, bool], None],
    ) -> None:
        self.collaborator = collaborator
        self.round_number = round_number
        self.task = task
        self._pending = set(tensor_names)
        self.tensor_count = len(tensor_names)
        self._model = model
        self.function = function
        self._weight = weight
        self._is_delta = is_delta
        self._on_commit = on_commit
        self._on_abort = on_abort
        self._refused = False  # the result itself is bad (not the connection): do not ask for it again
        self._ended = False
        self.holds_slot = False  # the aggregator's bound on results in flight
        self.holds_lane = False  # streams in its task's direct lane instead (no slot, no staged copy)
        self._given: dict[str, np.ndarray] = {}  # staging arrays handed to the transport, by tensor

    def destination(self, name: str) -> np.ndarray | None:
        """A staged result is received straight into its staging array; the lane's tensors are folded
        from the transport's (cache-warm, reused) buffer instead."""
        if self.holds_lane or name not in self._pending or name in self._given:
            return None
        array = self.function.staging_array(name, self.round_number)
        if array is not None:
            self._given[name] = array
        return array

    def add(self, name: str, array: np.ndarray) -> None:
        owned = self._given.pop(name, None) is array
        if name not in self._pending:
            self._refuse(RefusalCode.INVALID, f"tensor {name!r} was not announced, or arrived twice")
        try:
            check_tensor(name, array, self._model.get(name))
        except Refused as refused:
            self._refuse(refused.code, refused.reason)
        try:
            self.function.add(
                self.collaborator,
                name,
                array,
                self._weight,
                is_delta=self._is_delta,
                may_fold=self.holds_lane or not self.function.folds_first_result,
                owned=owned,
                round_number=self.round_number,
            )
        except ContributionError as exc:
            closed = "closed" in str(exc) or self.function.round_number != self.round_number
            if closed:
                raise Refused(RefusalCode.LATE, f"round {self.round_number} closed meanwhile") from None
            self._refuse(RefusalCode.INVALID, str(exc))
        except RuntimeError:  # the round was closed between two tensors
            raise Refused(RefusalCode.LATE, f"round {self.round_number} closed meanwhile") from None
        self._pending.discard(name)

    def commit(self) -> None:
        if self._pending:
            missing = sorted(self._pending)
            self._refuse(
                RefusalCode.INVALID,
                f"{len(missing)} announced tensor(s) missing: {', '.join(missing[:5])}",
            )
        self._on_commit(self)
        self._ended = True

    def abort(self, reason: str) -> None:
        if self._ended:
            return
        self._ended = True
        try:
            self.function.remove(self.collaborator, self.round_number)
        except ContributionError:
            log.exception("could not undo the result of %s for %r", self.collaborator, self.task)
        self._on_abort(self, reason, self._refused)

    def _refuse(self, code: RefusalCode, reason: str) -> None:
        self._refused = code is RefusalCode.INVALID
        raise Refused(code, reason)


class ResultSlots:
    """Bounds the results staged at once: aggregator memory is about the model, its accumulators and
    this many results in flight, whatever the number of collaborators.

    Beside the slots, a task whose aggregation function folds its first result directly
    (`folds_first_result`) has one direct lane per round, open until a result of the task is committed:
    the result in it lands in the running sum itself, so it streams concurrently at no memory cost.
    Per tensor at most one in-flight result is folded directly, so the staged copies stay bounded
    by the slots.
    """

    def __init__(self, count: int) -> None:
        self._semaphore = threading.BoundedSemaphore(max(1, count))

    def take(self, sink: ResultSink, round_open: Callable[[int], bool]) -> bool:
        """Wait for a slot; False if the sink's round closed meanwhile."""
        while not self._semaphore.acquire(timeout=0.5):
            if not round_open(sink.round_number):
                return False
        sink.holds_slot = True
        return True

    def release(self, sink: ResultSink) -> None:
        if sink.holds_slot:
            sink.holds_slot = False
            self._semaphore.release()
