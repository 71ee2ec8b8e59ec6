"""In-memory `StateStore` (simulations, tests). A `MemoryStorage` outlives its stores, so closing and
reopening behaves like the SQLite backend within one process."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from openfl_cli.federation.metrics.record import MetricRecord
from openfl_cli.federation.state.base import BestMetric, StateStore, mismatch_error
from openfl_cli.tensors.codec import dtype_name


def _copy(tensors: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name: np.array(value, copy=True) for name, value in tensors.items()}


def _checked_copy(tensors: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Copy, refusing what the SQLite backend could not store either (same contract)."""
    out = _copy(tensors)
    for value in out.values():
        dtype_name(value.dtype)
    return out


@dataclass
class MemoryStorage:
    plan_hash: str | None = None
    last_round: int | None = None
    models: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)
    best: BestMetric | None = None
    aggregation_state: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    metrics: list[MetricRecord] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class MemoryStateStore(StateStore):
    def __init__(
        self,
        plan_hash: str,
        *,
        db_store_rounds: int = 1,
        reset: bool = False,
        storage: MemoryStorage | None = None,
    ) -> None:
        super().__init__(plan_hash, db_store_rounds)
        self.storage = storage if storage is not None else MemoryStorage()
        with self.storage.lock:
            if reset or self.storage.plan_hash is None:
                self._wipe()
            elif self.storage.plan_hash != plan_hash:
                raise mismatch_error("the in-memory state", self.storage.plan_hash, plan_hash)

    def _wipe(self) -> None:
        fresh = MemoryStorage(plan_hash=self.plan_hash)
        for name in ("plan_hash", "last_round", "models", "best", "aggregation_state", "metrics"):
            setattr(self.storage, name, getattr(fresh, name))

    def last_round(self) -> int | None:
        return self.storage.last_round

    def rounds(self) -> list[int]:
        with self.storage.lock:
            return sorted(self.storage.models)

    def model(self, round_number: int) -> dict[str, np.ndarray]:
        with self.storage.lock:
            if round_number not in self.storage.models:
                raise KeyError(f"no model kept for round {round_number}")
            return _copy(self.storage.models[round_number])

    def best(self) -> BestMetric | None:
        return self.storage.best

    def aggregation_state(self) -> dict[str, dict[str, np.ndarray]]:
        with self.storage.lock:
            return {task: _copy(state) for task, state in self.storage.aggregation_state.items()}

    def metrics_history(self, round_number: int | None = None) -> list[MetricRecord]:
        with self.storage.lock:
            return [m for m in self.storage.metrics if round_number is None or m.round_number == round_number]

    def _commit(
        self,
        round_number: int,
        tensors: Mapping[str, np.ndarray],
        metrics: list[MetricRecord],
        best: BestMetric | None,
        aggregation_state: Mapping[str, Mapping[str, np.ndarray]] | None,
    ) -> None:
        # Build everything first, then swap under the lock: a failure leaves the storage untouched.
        model = _checked_copy(tensors)
        state = (
            None if aggregation_state is None else {t: _checked_copy(s) for t, s in aggregation_state.items()}
        )
        with self.storage.lock:
            models = dict(self.storage.models)
            models[round_number] = model
            for old in [r for r in models if r <= round_number - self.db_store_rounds]:
                del models[old]
            self.storage.models = models
            self.storage.metrics = [*self.storage.metrics, *metrics]
            if best is not None:
                self.storage.best = best
            if state is not None:
                self.storage.aggregation_state = state
            self.storage.last_round = round_number
