"""The streaming aggregation contract shared by every aggregation function.

How the aggregator drives it, once per task and round:

    fn.begin_round(round_number, global_tensors)         # the model the collaborators received
    acc = fn.accumulator(name)                            # per tensor, as result tensors stream in
    acc.add(collaborator, array, weight, is_delta=...)    # stage: copies `array` (buffers get reused),
                                                          # or keeps it (owned=True: from staging_array)
    fn.commit(collaborator)  /  fn.remove(collaborator)   # the whole result counts / is undone
    new_tensors = fn.end_round()                          # new global model, server state updated

Rules every implementation follows:
- `weight` is the sample count (>= 0). Zero-weight contributions are accepted but ignored; a tensor with no
  committed positive weight keeps its global value (never a division by zero).
- A contribution is staged by `add` and counts only after `commit`. `remove` drops a staged (uncommitted)
  contribution; removing a committed one raises, removing an unknown one does nothing (an abort may
  come before the first tensor).
- `is_delta=True` means the collaborator sent (trained - received): the contribution is global + array.
- Results keep the dtype and shape of the global tensor. Non-float tensors (integers, bools) cannot be
  averaged meaningfully: they take the committed value when all committed contributions agree, else
  keep the global value.
- Accumulators are thread-safe: results of several collaborators may stream in at the same time.
"""

from __future__ import annotations

import math
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from openfl_cli.federation.aggregation._kernels import as_tensor, value_digest


class ContributionError(ValueError):
    """A contribution that cannot be folded in (wrong shape or dtype, duplicate, bad weight)."""


def is_float_tensor(array: np.ndarray) -> bool:
    return array.dtype.kind == "f"


@dataclass(frozen=True)
class Contribution:
    """One collaborator's value of one tensor, as `TensorAccumulator.add` received it."""

    contributor: str
    array: np.ndarray
    weight: float
    is_delta: bool = False
    may_fold: bool = True  # False: stage it, never fold it straight into the running aggregate
    owned: bool = False  # True: the accumulator may keep `array` itself (from `staging_array`)


@dataclass
class _Entry:
    weight: float
    committed: bool = False


class TensorAccumulator(ABC):
    """Folds the contributions to one tensor of one round."""

    def __init__(self, name: str, global_value: np.ndarray) -> None:
        self.name = name
        self.global_value = global_value
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self._closed = False

    def add(
        self,
        contributor: str,
        array: np.ndarray,
        weight: float,
        *,
        is_delta: bool = False,
        may_fold: bool = True,
        owned: bool = False,
    ) -> None:
        """Stage one contribution; `array` is copied (it may view a transport buffer) unless `owned`
        (it came from `AggregationFunction.staging_array` and is handed over). `may_fold` False keeps it
        out of a direct fold into the running aggregate (see `folds_first_result`)."""
        weight = _check_weight(weight)
        self._check_array(array)
        with self._lock:
            if self._closed:
                raise ContributionError(f"tensor {self.name!r}: the round is closed")
            if contributor in self._entries:
                raise ContributionError(f"tensor {self.name!r}: {contributor} already contributed this round")
            self._stage(Contribution(contributor, array, weight, is_delta, may_fold, owned))
            self._entries[contributor] = _Entry(weight)

    def commit(self, contributor: str) -> None:
        """The staged contribution counts. Unknown contributors are ignored (no such tensor sent)."""
        with self._lock:
            if self._closed:
                raise ContributionError(f"tensor {self.name!r}: the round is closed")
            entry = self._entries.get(contributor)
            if entry is None or entry.committed:
                return
            self._commit(contributor, entry.weight)
            entry.committed = True

    def remove(self, contributor: str) -> None:
        """Undo a staged contribution (the result was aborted or refused)."""
        with self._lock:
            entry = self._entries.get(contributor)
            if entry is None or self._closed:
                return
            if entry.committed:
                raise ContributionError(
                    f"tensor {self.name!r}: {contributor} is committed, its contribution cannot be removed"
                )
            self._drop(contributor)
            del self._entries[contributor]

    @property
    def contributors(self) -> tuple[str, ...]:
        """The committed contributors."""
        with self._lock:
            return tuple(name for name, entry in self._entries.items() if entry.committed)

    @property
    def total_weight(self) -> float:
        with self._lock:
            return math.fsum(entry.weight for entry in self._entries.values() if entry.committed)

    def has_result(self) -> bool:
        """True when committed contributions carry positive weight (else the global value stays)."""
        return self.total_weight > 0

    def result(self) -> np.ndarray:
        """The aggregate of the committed contributions (a new array, global dtype and shape)."""
        with self._lock:
            committed = {n: e.weight for n, e in self._entries.items() if e.committed and e.weight > 0}
            if not committed:
                return np.array(self.global_value, copy=True)
            value = self._result(committed)
        return as_tensor(value, self.global_value.dtype, self.global_value.shape)

    def close(self) -> None:
        """Refuse further contributions and release what the accumulator holds."""
        with self._lock:
            self._closed = True
            self._release()

    def _release(self) -> None:
        """Free staged copies and temporary files (called once, under the lock)."""
        return None

    def _check_array(self, array: np.ndarray) -> None:
        if not isinstance(array, np.ndarray):
            raise ContributionError(
                f"tensor {self.name!r}: expected a numpy array, got {type(array).__name__}"
            )
        if array.shape != self.global_value.shape:
            raise ContributionError(
                f"tensor {self.name!r}: shape {array.shape} differs from the global {self.global_value.shape}"
            )
        if array.dtype != self.global_value.dtype:
            raise ContributionError(
                f"tensor {self.name!r}: dtype {array.dtype} differs from the global {self.global_value.dtype}"
            )

    def _full_value(self, array: np.ndarray, is_delta: bool, dtype: np.dtype | None = None) -> np.ndarray:
        """The contribution as a full tensor (a new array), in `dtype` (default: the global dtype)."""
        dtype = dtype or self.global_value.dtype
        if is_delta:
            return np.add(self.global_value, array, dtype=dtype)
        return np.array(array, dtype=dtype, copy=True)

    @abstractmethod
    def _stage(self, contribution: Contribution) -> None:
        """Keep what `commit` needs of `contribution` (weight checked, array checked, not yet seen)."""

    @abstractmethod
    def _commit(self, contributor: str, weight: float) -> None: ...

    @abstractmethod
    def _drop(self, contributor: str) -> None: ...

    @abstractmethod
    def _result(self, weights: Mapping[str, float]) -> np.ndarray:
        """Aggregate the committed contributors named in `weights` (all with positive weight)."""


class AgreementAccumulator(TensorAccumulator):
    """Non-float tensors: the committed value if all positive-weight contributions agree, else global.

    Keeps one copy per distinct value (counters like BatchNorm's num_batches_tracked are small).
    """

    def __init__(self, name: str, global_value: np.ndarray) -> None:
        super().__init__(name, global_value)
        self._staged: dict[str, np.ndarray] = {}
        self._digest_of: dict[str, str] = {}
        self._values: dict[str, np.ndarray] = {}

    def _stage(self, contribution: Contribution) -> None:
        self._staged[contribution.contributor] = self._full_value(contribution.array, contribution.is_delta)

    def _commit(self, contributor: str, weight: float) -> None:
        value = self._staged.pop(contributor)
        digest = value_digest(value)
        self._digest_of[contributor] = digest
        if weight > 0:
            self._values.setdefault(digest, value)

    def _drop(self, contributor: str) -> None:
        self._staged.pop(contributor, None)

    def _result(self, weights: Mapping[str, float]) -> np.ndarray:
        digests = {self._digest_of[name] for name in weights}
        if len(digests) == 1:
            return np.array(self._values[digests.pop()], copy=True)
        return np.array(self.global_value, copy=True)

    def _release(self) -> None:
        self._staged.clear()
        self._values.clear()


def _check_weight(weight: float) -> float:
    if isinstance(weight, bool):
        raise ContributionError(f"weight must be a number, got {weight!r}")
    try:
        value = float(weight)
    except (TypeError, ValueError):
        raise ContributionError(f"weight must be a number, got {weight!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ContributionError(f"weight must be a finite number >= 0, got {weight!r}")
    return value
