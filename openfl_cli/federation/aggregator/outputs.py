"""What a closed round leaves behind: `last` and `best` snapshots, the persistent state, metric logs.

Order matters for a kill at any moment: the snapshots are written (atomically) before the round is
committed to the state store, so a round the store records always has its files; a round killed before
its commit is redone from scratch by a restarted aggregator and rewrites the same files.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from openfl_cli.federation.metrics.record import MetricRecord
from openfl_cli.federation.state.base import BestMetric

if TYPE_CHECKING:
    import numpy as np

    from openfl_cli.federation.metrics.writers import MetricWriter
    from openfl_cli.federation.state.base import StateStore

log = logging.getLogger(__name__)

AGGREGATOR_NODE = "aggregator"


@dataclass(frozen=True)
class BestMetricRule:
    """Which aggregated metric picks the best model, and whether it judged the round's starting model."""

    task: str = "aggregated_model_validation"
    metric: str = "acc"
    higher_is_better: bool = True
    judges_start_model: bool = True  # true when the task validates the global model it received

    def better(self, value: float, best: BestMetric | None) -> bool:
        if not math.isfinite(value):
            return False
        if best is None:
            return True
        return value > best.value if self.higher_is_better else value < best.value


@dataclass(frozen=True)
class ResumePoint:
    next_round: int
    model: dict[str, np.ndarray]
    best: BestMetric | None
    aggregation_state: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


@dataclass
class RoundRecord:
    """A closed round as the outputs need it. Not frozen for one reason: `best_model` is let go as soon
    as best.pbuf is written, so the round's starting model is freed before the slower writes."""

    number: int
    new_model: Mapping[str, np.ndarray]
    aggregated: Mapping[str, Mapping[str, float]]  # task -> metric -> value
    collaborator_records: list[MetricRecord]
    aggregation_state: Mapping[str, Mapping[str, np.ndarray]]
    best: BestMetric | None = None  # set when this round improved the best metric
    best_model: Mapping[str, np.ndarray] | None = None  # then: the model it judged


class RoundOutputs:
    def __init__(
        self,
        *,
        last_path: Path,
        best_path: Path,
        rule: BestMetricRule,
        store: StateStore | None = None,
        writer: MetricWriter | None = None,
        save_native: Callable[[Mapping[str, np.ndarray]], Path] | None = None,
    ) -> None:
        self.last_path = last_path
        self.best_path = best_path
        self.rule = rule
        self.store = store
        self.writer = writer
        self._save_native = save_native
        self.best: BestMetric | None = store.best() if store is not None else None
        self._said_metric_missing = False

    def resume_point(self) -> ResumePoint | None:
        """Where a restarted aggregator carries on, None for a fresh experiment."""
        if self.store is None:
            return None
        checkpoint = self.store.latest()
        if checkpoint is None:
            return None
        return ResumePoint(
            checkpoint.round_number + 1, checkpoint.tensors, checkpoint.best, checkpoint.aggregation_state
        )

    def judge(
        self,
        number: int,
        aggregated: Mapping[str, Mapping[str, float]],
        start_model: Mapping[str, np.ndarray],
        new_model: Mapping[str, np.ndarray],
    ) -> tuple[BestMetric | None, Mapping[str, np.ndarray] | None]:
        """Did round `number` improve the best metric? Then (the new best, the model it judged)."""
        reported = aggregated.get(self.rule.task, {})
        value = reported.get(self.rule.metric)
        if value is None and reported and not self._said_metric_missing:
            self._said_metric_missing = True  # once: every round would say the same
            log.warning(
                "no best model is kept: task %s reports %s, not %r (aggregator.settings.best_metric)",
                self.rule.task,
                ", ".join(sorted(reported)),
                self.rule.metric,
            )
        if value is None or not self.rule.better(value, self.best):
            return None, None
        self.best = BestMetric(float(value), number)
        return self.best, start_model if self.rule.judges_start_model else new_model

    def round_closed(self, record: RoundRecord) -> None:
        """Write everything of a closed round (snapshots first, then the atomic store commit)."""
        from openfl_cli.tensors.snapshot import save_snapshot

        self._write_best(record)
        save_snapshot(self.last_path, record.new_model, round_number=record.number)
        records = [*record.collaborator_records, *aggregated_records(record.number, record.aggregated)]
        if self.store is not None:
            self.store.commit_round(
                record.number,
                record.new_model,
                metrics=records,
                best=record.best,
                aggregation_state={task: dict(state) for task, state in record.aggregation_state.items()},
            )
        if self.writer is not None:
            try:
                self.writer.write_all(records)
            except Exception:  # logs must never stop a federation
                log.exception("writing the metrics of round %d failed", record.number)

    def _write_best(self, record: RoundRecord) -> None:
        """best.pbuf, when the round improved it; the record then lets its model go."""
        from openfl_cli.tensors.snapshot import save_snapshot

        best_model, record.best_model = record.best_model, None
        if record.best is None or best_model is None:
            return
        save_snapshot(self.best_path, best_model, round_number=record.number)
        log.info(
            "best model so far: %s %s = %.4f (round %d)",
            self.rule.task,
            self.rule.metric,
            record.best.value,
            record.number + 1,
        )

    def best_written(self) -> Path | None:
        """`best_path` when a best model was chosen (in this run or before a restart) and its file is
        there; None when no round ever scored the best metric (nothing may claim the file then)."""
        return self.best_path if self.best is not None and self.best_path.is_file() else None

    def experiment_done(self, model: Mapping[str, np.ndarray]) -> Path | None:
        """The native model, when `save_native_model` asked for it."""
        if self._save_native is None:
            return None
        try:
            path = self._save_native(model)
        except Exception:
            log.exception("saving the framework-native model failed (the .pbuf snapshots are complete)")
            return None
        log.info("native model written to %s", path)
        return path

    def close(self) -> None:
        for closable in (self.writer, self.store):
            if closable is not None:
                try:
                    closable.close()
                except Exception:
                    log.exception("closing %s failed", type(closable).__name__)


def aggregated_records(
    round_number: int, aggregated: Mapping[str, Mapping[str, float]]
) -> list[MetricRecord]:
    return [
        MetricRecord(round_number, AGGREGATOR_NODE, task, metric, value)
        for task, metrics in aggregated.items()
        for metric, value in metrics.items()
        if math.isfinite(value)
    ]
