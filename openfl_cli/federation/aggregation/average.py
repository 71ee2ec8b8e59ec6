"""Weighted average (FedAvg): a running float64 sum, so memory is one float64 copy of the model
(kept between rounds: fresh pages cost a fault per 4 KiB) plus the staged (in-flight, uncommitted)
results; the first result of a round is not staged (see WeightedSumAccumulator). A staged result is
received straight into its staging array (`staging_array`), and once folded, that array is reused by
the next staged result or becomes the tensor's new global value: no page faults on the way.

Terms are folded in place, block by block: a small float64 scratch stays in cache instead of a
tensor-sized temporary per pass.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from functools import partial

import numpy as np

from openfl_cli.federation.aggregation._kernels import (
    BLOCK,
    divide_range,
    fold_range,
    weight_sum,
    weighted_term,
)
from openfl_cli.federation.aggregation.base import Contribution, TensorAccumulator, is_float_tensor
from openfl_cli.federation.aggregation.function import AggregationFunction
from openfl_cli.utils.parallel import for_ranges


class SpareArrays:
    """At most one spare array per tensor name, handed from where it is freed to where the same shape
    and dtype is needed next: fresh memory costs a page fault per 4 KiB, a spare costs nothing."""

    def __init__(self) -> None:
        self._spare: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def take(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """The spare of `name` if it fits, else a new (uninitialized) array."""
        spare = self.pop(name, shape, dtype)
        return spare if spare is not None else np.empty(shape, dtype=dtype)

    def pop(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray | None:
        """The spare of `name` if there is one and it fits."""
        with self._lock:
            spare = self._spare.pop(name, None)
        return spare if spare is not None and spare.shape == shape and spare.dtype == dtype else None

    def give(self, name: str, array: np.ndarray) -> None:
        """Keep `array` (no longer used by its giver) for the next `take` of `name`."""
        with self._lock:
            self._spare.setdefault(name, array)

    def clear(self) -> None:
        with self._lock:
            self._spare.clear()


class WeightedSumAccumulator(TensorAccumulator):
    """sum(weight * value) / sum(weight) over committed contributions.

    While nothing is committed, the first contribution goes straight into a float64 buffer as its
    weighted term (no staged copy, nothing left to do at commit); undoing it only drops that buffer,
    so an aborted result leaves no trace. Later contributions are staged in their own dtype; once
    committed, the latest one is held back until the next commit or staging array needs it, or until
    the round closes, where its fold and the division are one pass over memory (the close is what the
    next round waits for).
    """

    def __init__(
        self,
        name: str,
        global_value: np.ndarray,
        sums: SpareArrays | None = None,
        values: SpareArrays | None = None,
    ) -> None:
        super().__init__(name, global_value)
        self._staged: dict[str, tuple[np.ndarray, bool] | None] = {}  # None: zero weight, nothing kept
        self._sum: np.ndarray | None = None  # flat float64 sum of the committed terms
        self._direct: tuple[str, np.ndarray] | None = None  # an uncommitted term, already weighted
        # The latest committed staged result, not yet in the sum: folded when the next one commits, or
        # fused with the division when the round closes (the close then waits on one pass, not two).
        self._deferred: tuple[np.ndarray, float, bool] | None = None
        self._taken = False  # the result was computed (it may have consumed the deferred array)
        self._sums = sums or SpareArrays()
        self._values = values or SpareArrays()  # arrays shaped like the global value

    def _stage(self, contribution: Contribution) -> None:
        contributor, array, weight = contribution.contributor, contribution.array, contribution.weight
        is_delta, owned = contribution.is_delta, contribution.owned
        if weight == 0:
            self._staged[contributor] = None
            self._recycle(array, owned)
        elif contribution.may_fold and self._sum is None and self._direct is None:
            term = self._take_sum()
            self._fold(term, array, weight, is_delta, first=True)
            self._direct = (contributor, term)
            self._recycle(array, owned)
        else:
            # Keep the native dtype until commit: staging is the "results in flight" part of memory.
            self._staged[contributor] = (array if owned else np.array(array, copy=True), is_delta)

    def _commit(self, contributor: str, weight: float) -> None:
        if self._direct is not None and self._direct[0] == contributor:
            term = self._direct[1]
            self._direct = None
            if self._sum is None:
                self._sum = term
            else:
                np.add(self._sum, term, out=self._sum)
            return
        staged = self._staged.pop(contributor)
        if staged is None:
            return
        array, is_delta = staged
        if self._sum is None:
            self._sum = self._take_sum()
            # the round may wait on this fold alone (its last result): use every core
            self._fold(self._sum, array, weight, is_delta, first=True, parallel=True)
            self._recycle(array, owned=True)
            return
        self._fold_deferred()
        self._deferred = (array, weight, is_delta)

    def release_deferred(self) -> np.ndarray | None:
        """Fold the held-back committed result now and hand its array over (for the next staged
        result, so that it does not need fresh memory beside it); None if nothing is held back."""
        with self._lock:
            if self._closed or self._deferred is None or self._sum is None:
                return None
            array = self._deferred[0]
            self._fold_deferred(recycle=False)
            return array

    def _fold_deferred(self, recycle: bool = True) -> None:
        if self._deferred is not None and self._sum is not None:
            array, weight, is_delta = self._deferred
            self._deferred = None
            self._fold(self._sum, array, weight, is_delta, first=False, parallel=True)
            if recycle:
                self._recycle(array, owned=True)

    def _take_sum(self) -> np.ndarray:
        return self._sums.take(self.name, (self.global_value.size,), np.dtype(np.float64))

    def _recycle(self, array: np.ndarray, owned: bool) -> None:
        """An array this accumulator owns and no longer needs goes to the spares."""
        if owned and array.shape == self.global_value.shape and array.dtype == self.global_value.dtype:
            self._values.give(self.name, array)

    def _fold(
        self,
        total: np.ndarray,
        array: np.ndarray,
        weight: float,
        is_delta: bool,
        first: bool,
        *,
        parallel: bool = False,
    ) -> None:
        """total (flat float64) = [total +] weight * (array [+ global]), computed block by block;
        `parallel` spreads the blocks over the cores (when nothing else runs)."""
        values = array.reshape(-1)
        base = self.global_value.reshape(-1) if is_delta else None
        fold = partial(fold_range, total, values, base, weight, first)
        if parallel:
            for_ranges(values.size, fold, align=BLOCK)
        else:
            fold(0, values.size)

    def _drop(self, contributor: str) -> None:
        if self._direct is not None and self._direct[0] == contributor:
            self._sums.give(self.name, self._direct[1])
            self._direct = None
        staged = self._staged.pop(contributor, None)
        if staged is not None:
            self._recycle(staged[0], owned=True)

    def _result(self, weights: Mapping[str, float]) -> np.ndarray:
        if self._taken:
            raise RuntimeError(f"tensor {self.name!r}: the result of this round was already taken")
        self._taken = True
        assert self._sum is not None  # has positive committed weight
        total, flat_sum = weight_sum(weights.values()), self._sum
        if self._deferred is not None:
            array, weight, is_delta = self._deferred
            self._deferred = None
            return self._fold_and_divide(array, weight, is_delta, total)
        out = self._values.take(self.name, self.global_value.shape, self.global_value.dtype)
        flat_out = out.reshape(-1)
        for_ranges(flat_out.size, partial(divide_range, flat_sum, total, flat_out), align=BLOCK)
        return out

    def _fold_and_divide(self, array: np.ndarray, weight: float, is_delta: bool, total: float) -> np.ndarray:
        """(sum + weight * (array [+ global])) / total, written over `array` block by block: the same
        operations in the same order as folding it in and dividing, so the same bits."""
        assert self._sum is not None
        flat_sum, values = self._sum, array.reshape(-1)
        base = self.global_value.reshape(-1) if is_delta else None

        def fused_range(begin: int, end: int) -> None:
            scratch = np.empty(min(BLOCK, end - begin), dtype=np.float64)
            for start in range(begin, end, BLOCK):
                stop = min(start + BLOCK, end)
                term = scratch[: stop - start]
                weighted_term(values, base, weight, start, stop, term)
                np.add(flat_sum[start:stop], term, out=term)
                divide_range(term, total, values[start:stop], 0, stop - start)

        for_ranges(values.size, fused_range, align=BLOCK)
        return array

    def _release(self) -> None:
        self._staged.clear()
        self._deferred = None
        if self._direct is not None:
            self._sums.give(self.name, self._direct[1])
            self._direct = None
        if self._sum is not None:
            self._sums.give(self.name, self._sum)
            self._sum = None


class WeightedAverage(AggregationFunction):
    """The default: the sample-count-weighted mean of the collaborators' tensors."""

    folds_first_result = True

    def __init__(self) -> None:
        super().__init__()
        self._sums = SpareArrays()  # kept between rounds
        self._values = SpareArrays()  # within a round: staged arrays, then new global values

    def staging_array(self, name: str, round_number: int | None = None) -> np.ndarray | None:
        global_value = self._global_value(name, round_number)
        if global_value is None or not is_float_tensor(global_value):
            return None
        array = self._values.pop(name, global_value.shape, global_value.dtype)
        if array is None:
            accumulator = self._existing_accumulator(name)
            if isinstance(accumulator, WeightedSumAccumulator):
                array = accumulator.release_deferred()
        return array if array is not None else np.empty(global_value.shape, dtype=global_value.dtype)

    def _float_accumulator(self, name: str, global_value: np.ndarray) -> TensorAccumulator:
        return WeightedSumAccumulator(name, global_value, self._sums, self._values)

    def _release_round(self) -> None:
        self._values.clear()  # spares not turned into global values do not outlive their round

    def close(self) -> None:
        super().close()
        self._sums.clear()
