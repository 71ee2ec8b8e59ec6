"""Weighted average (FedAvg): a running float64 sum, so memory is one float64 copy of the model
(kept between rounds: fresh pages cost a fault per 4 KiB) plus the staged (in-flight, uncommitted)
results; the first result of a round is not staged (see WeightedSumAccumulator).

Terms are folded in place, block by block: a small float64 scratch stays in cache instead of a
tensor-sized temporary per pass.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping

import numpy as np

from openfl_cli.federation.aggregation.base import TensorAccumulator
from openfl_cli.federation.aggregation.function import AggregationFunction
from openfl_cli.utils.parallel import for_ranges

BLOCK = 1 << 16  # elements folded per step: 512 KiB of float64 scratch


class SumBuffers:
    """Float64 sum buffers (flat, by tensor name) handed from one round's accumulators to the next."""

    def __init__(self) -> None:
        self._spare: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def take(self, name: str, size: int) -> np.ndarray:
        with self._lock:
            buffer = self._spare.pop(name, None)
        if buffer is None or buffer.size != size:
            buffer = np.empty(size, dtype=np.float64)
        return buffer

    def give(self, name: str, buffer: np.ndarray) -> None:
        with self._lock:
            self._spare[name] = buffer

    def clear(self) -> None:
        with self._lock:
            self._spare.clear()


class WeightedSumAccumulator(TensorAccumulator):
    """sum(weight * value) / sum(weight) over committed contributions.

    While nothing is committed, the first contribution goes straight into a float64 buffer as its
    weighted term (no staged copy, nothing left to do at commit); undoing it only drops that buffer,
    so an aborted result leaves no trace. Later contributions are staged in their own dtype and folded
    at commit.
    """

    def __init__(self, name: str, global_value: np.ndarray, buffers: SumBuffers | None = None) -> None:
        super().__init__(name, global_value)
        self._staged: dict[str, tuple[np.ndarray, bool] | None] = {}  # None: zero weight, nothing kept
        self._sum: np.ndarray | None = None  # flat float64 sum of the committed terms
        self._direct: tuple[str, np.ndarray] | None = None  # an uncommitted term, already weighted
        self._buffers = buffers or SumBuffers()

    def _stage(
        self, contributor: str, array: np.ndarray, weight: float, is_delta: bool, may_fold: bool
    ) -> None:
        if weight == 0:
            self._staged[contributor] = None
        elif may_fold and self._sum is None and self._direct is None:
            term = self._buffers.take(self.name, array.size)
            self._fold(term, array, weight, is_delta, first=True)
            self._direct = (contributor, term)
        else:
            # Keep the native dtype until commit: staging is the "results in flight" part of memory.
            self._staged[contributor] = (np.array(array, copy=True), is_delta)

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
        first = self._sum is None
        if first:
            self._sum = self._buffers.take(self.name, array.size)
        assert self._sum is not None
        # the round may wait on this fold alone (its last result): use every core
        self._fold(self._sum, array, weight, is_delta, first=first, parallel=True)

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

        def fold_range(begin: int, end: int) -> None:
            scratch = np.empty(min(BLOCK, end - begin), dtype=np.float64)
            for start in range(begin, end, BLOCK):
                stop = min(start + BLOCK, end)
                term = total[start:stop] if first else scratch[: stop - start]
                if base is None:
                    np.multiply(values[start:stop], weight, out=term, dtype=np.float64)
                else:
                    np.add(values[start:stop], base[start:stop], out=term, dtype=np.float64)
                    np.multiply(term, weight, out=term)
                if not first:
                    np.add(total[start:stop], term, out=total[start:stop])

        if parallel:
            for_ranges(values.size, fold_range, align=BLOCK)
        else:
            fold_range(0, values.size)

    def _drop(self, contributor: str) -> None:
        if self._direct is not None and self._direct[0] == contributor:
            self._buffers.give(self.name, self._direct[1])
            self._direct = None
        self._staged.pop(contributor, None)

    def _result(self, weights: Mapping[str, float]) -> np.ndarray:
        assert self._sum is not None  # has positive committed weight
        total, flat_sum = math.fsum(weights.values()), self._sum
        out = np.empty(self.global_value.shape, dtype=self.global_value.dtype)
        flat_out = out.reshape(-1)

        def divide_range(start: int, stop: int) -> None:
            # One pass: divided in float64, rounded once into the global dtype.
            np.divide(flat_sum[start:stop], total, out=flat_out[start:stop], casting="same_kind")

        for_ranges(flat_out.size, divide_range, align=BLOCK)
        return out

    def _release(self) -> None:
        self._staged.clear()
        if self._direct is not None:
            self._buffers.give(self.name, self._direct[1])
            self._direct = None
        if self._sum is not None:
            self._buffers.give(self.name, self._sum)
            self._sum = None


class WeightedAverage(AggregationFunction):
    """The default: the sample-count-weighted mean of the collaborators' tensors."""

    folds_first_result = True

    def __init__(self) -> None:
        super().__init__()
        self._sum_buffers = SumBuffers()

    def _float_accumulator(self, name: str, global_value: np.ndarray) -> TensorAccumulator:
        return WeightedSumAccumulator(name, global_value, self._sum_buffers)

    def close(self) -> None:
        super().close()
        self._sum_buffers.clear()
