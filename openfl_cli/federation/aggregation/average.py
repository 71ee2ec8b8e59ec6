"""Weighted average (FedAvg): a running float64 sum, so memory is one float64 copy of the model
plus the staged (in-flight, uncommitted) results."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from openfl_cli.federation.aggregation.base import TensorAccumulator
from openfl_cli.federation.aggregation.function import AggregationFunction


class WeightedSumAccumulator(TensorAccumulator):
    """sum(weight * value) / sum(weight) over committed contributions."""

    def __init__(self, name: str, global_value: np.ndarray) -> None:
        super().__init__(name, global_value)
        self._staged: dict[str, tuple[np.ndarray, bool]] = {}
        self._sum: np.ndarray | None = None

    def _stage(self, contributor: str, array: np.ndarray, weight: float, is_delta: bool) -> None:
        # Keep the native dtype until commit: staging is the "results in flight" part of memory.
        self._staged[contributor] = (np.array(array, copy=True), is_delta)

    def _commit(self, contributor: str, weight: float) -> None:
        array, is_delta = self._staged.pop(contributor)
        if weight == 0:
            return
        if self._sum is None:
            self._sum = np.zeros(self.global_value.shape, dtype=np.float64)
        term = array.astype(np.float64)
        if is_delta:
            term += self.global_value
        term *= weight
        self._sum += term

    def _drop(self, contributor: str) -> None:
        self._staged.pop(contributor, None)

    def _result(self, weights: Mapping[str, float]) -> np.ndarray:
        assert self._sum is not None  # has positive committed weight
        return self._sum / math.fsum(weights.values())

    def _release(self) -> None:
        self._staged.clear()
        self._sum = None


class WeightedAverage(AggregationFunction):
    """The default: the sample-count-weighted mean of the collaborators' tensors."""

    def _float_accumulator(self, name: str, global_value: np.ndarray) -> TensorAccumulator:
        return WeightedSumAccumulator(name, global_value)
