"""`StateStore`: what an aggregator with `persist_checkpoint: true` needs to resume after a crash.

One `commit_round` per completed round, atomic: after a kill at any moment, a reopened store holds
either everything of that round or nothing of it. Kept: the plan hash (a store refuses another plan),
the last completed round, the global model after each of the last `db_store_rounds` rounds, the best
metric so far, the aggregation functions' state (latest only) and every round's metrics.

Arrays handed out are fresh copies the caller owns.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType

import numpy as np

from openfl_cli.errors import UsageError
from openfl_cli.federation.metrics.record import MetricRecord

SCHEMA_VERSION = 1


class StateMismatchError(UsageError):
    """The store belongs to another experiment (plan hash) or a newer schema."""


@dataclass(frozen=True)
class BestMetric:
    value: float
    round_number: int


@dataclass(frozen=True)
class RoundCheckpoint:
    """Everything recorded for a completed round."""

    round_number: int
    tensors: dict[str, np.ndarray]
    best: BestMetric | None = None
    aggregation_state: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # task -> state


class StateStore(ABC):
    def __init__(self, plan_hash: str, db_store_rounds: int) -> None:
        if not isinstance(plan_hash, str) or not plan_hash:
            raise ValueError("plan_hash must be a non-empty string")
        if isinstance(db_store_rounds, bool) or not isinstance(db_store_rounds, int) or db_store_rounds < 1:
            raise ValueError(f"db_store_rounds must be an integer >= 1, got {db_store_rounds!r}")
        self.plan_hash = plan_hash
        self.db_store_rounds = db_store_rounds

    def commit_round(
        self,
        round_number: int,
        tensors: Mapping[str, np.ndarray],
        *,
        metrics: Iterable[MetricRecord] = (),
        best: BestMetric | None = None,
        aggregation_state: Mapping[str, Mapping[str, np.ndarray]] | None = None,
    ) -> None:
        """Record a completed round atomically. `round_number` must exceed the last one; `best`
        None keeps the previous best; `aggregation_state` None keeps the previous state."""
        if isinstance(round_number, bool) or not isinstance(round_number, int) or round_number < 0:
            raise ValueError(f"round number must be an integer >= 0, got {round_number!r}")
        last = self.last_round()
        if last is not None and round_number <= last:
            raise ValueError(f"round {round_number} is not after the last recorded round {last}")
        if best is not None and not math.isfinite(best.value):
            raise ValueError(f"best metric must be finite, got {best.value!r}")
        self._commit(round_number, tensors, list(metrics), best, aggregation_state)

    @abstractmethod
    def last_round(self) -> int | None:
        """The last completed round, None for a fresh store."""

    @abstractmethod
    def rounds(self) -> list[int]:
        """Rounds whose model is still kept (ascending)."""

    @abstractmethod
    def model(self, round_number: int) -> dict[str, np.ndarray]:
        """The global model after `round_number`; KeyError if never recorded or pruned."""

    @abstractmethod
    def best(self) -> BestMetric | None: ...

    @abstractmethod
    def aggregation_state(self) -> dict[str, dict[str, np.ndarray]]:
        """Task -> aggregation function state, as of the last round."""

    @abstractmethod
    def metrics_history(self, round_number: int | None = None) -> list[MetricRecord]:
        """Metrics of one round, or of all rounds, in the order they were committed."""

    def latest(self) -> RoundCheckpoint | None:
        """Where to resume from: the last completed round, or None for a fresh store."""
        last = self.last_round()
        if last is None:
            return None
        return RoundCheckpoint(last, self.model(last), self.best(), self.aggregation_state())

    def close(self) -> None:
        return None

    def __enter__(self) -> StateStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @abstractmethod
    def _commit(
        self,
        round_number: int,
        tensors: Mapping[str, np.ndarray],
        metrics: list[MetricRecord],
        best: BestMetric | None,
        aggregation_state: Mapping[str, Mapping[str, np.ndarray]] | None,
    ) -> None: ...


def mismatch_error(where: str, stored: str, wanted: str) -> StateMismatchError:
    return StateMismatchError(
        f"{where} holds the state of another plan (hash {stored[:12]}..., this plan {wanted[:12]}...); "
        "delete it or start over to discard it"
    )
