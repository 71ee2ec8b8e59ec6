"""FedCurv (Shoham et al. 2019, "Overcoming Forgetting in Federated Learning on Non-IID Data").

Each collaborator t trains with a penalty that keeps the weights near where the other collaborators'
diagonal Fisher information says they matter, and sends beside its weights three Fisher-derived
tensors per parameter p: `p_u` = diag(F_t), `p_v` = diag(F_t) * theta_t and `p_w` =
diag(F_t) * theta_t^2 (OpenFL's names). The penalty needs the sums of those over every collaborator
(each one subtracts its own), so the server sums them, unweighted, while the weights themselves get
the usual sample-weighted average.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from openfl_cli.federation.aggregation.average import WeightedAverage
from openfl_cli.federation.aggregation.base import Contribution, TensorAccumulator

FISHER_SUFFIXES = ("_u", "_v", "_w")


class SumAccumulator(TensorAccumulator):
    """sum(value) over the committed contributions with positive weight (weights only gate them), in
    float64; zero-weight contributions are ignored, as by every accumulator."""

    def __init__(self, name: str, global_value: np.ndarray) -> None:
        super().__init__(name, global_value)
        self._staged: dict[str, np.ndarray] = {}
        self._sum: np.ndarray | None = None

    def _stage(self, contribution: Contribution) -> None:
        if contribution.weight > 0:
            self._staged[contribution.contributor] = self._full_value(
                contribution.array, contribution.is_delta, np.dtype(np.float64)
            )

    def _commit(self, contributor: str, weight: float) -> None:
        value = self._staged.pop(contributor, None)
        if value is None:
            return
        if self._sum is None:
            self._sum = value
        else:
            np.add(self._sum, value, out=self._sum)

    def _drop(self, contributor: str) -> None:
        self._staged.pop(contributor, None)

    def _result(self, weights: Mapping[str, float]) -> np.ndarray:
        assert self._sum is not None  # a committed contribution with positive weight was summed
        return self._sum

    def _release(self) -> None:
        self._staged.clear()
        self._sum = None


class FedCurvWeightedAverage(WeightedAverage):
    """FedCurv's server side: the Fisher-derived tensors (names ending in one of `fisher_suffixes`)
    are summed over the collaborators, every other tensor is averaged by sample count."""

    folds_first_result = False  # the sums keep a float64 copy of each result in flight

    def __init__(self, fisher_suffixes: Sequence[str] = FISHER_SUFFIXES) -> None:
        super().__init__()
        if isinstance(fisher_suffixes, str) or not all(
            isinstance(suffix, str) and suffix for suffix in fisher_suffixes
        ):
            raise ValueError(f"fisher_suffixes must be a list of non-empty strings, got {fisher_suffixes!r}")
        self.fisher_suffixes = tuple(fisher_suffixes)

    def is_fisher(self, name: str) -> bool:
        return name.endswith(self.fisher_suffixes)

    def staging_array(self, name: str, round_number: int | None = None) -> np.ndarray | None:
        return None if self.is_fisher(name) else super().staging_array(name, round_number)

    def _float_accumulator(self, name: str, global_value: np.ndarray) -> TensorAccumulator:
        if self.is_fisher(name):
            return SumAccumulator(name, global_value)
        return super()._float_accumulator(name, global_value)
