"""Bookkeeping of one round: who has which tasks, what arrived, what failed, what is in flight.

Pure data, no locking: the aggregator holds its condition's lock around every use. What the aggregator
asks after every result (who is finished, is a task final) is kept up to date as results arrive, so
that a round of N collaborators costs O(N), not O(N^2) (the simulator runs thousands).
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from openfl_cli.federation.metrics.record import MetricRecord

if TYPE_CHECKING:
    import numpy as np

TaskKey = tuple[str, str]  # (collaborator, task)


@dataclass
class TaskOutcome:
    metrics: dict[str, float]
    sample_count: int


@dataclass
class RoundState:
    number: int
    assignments: dict[str, tuple[str, ...]]  # collaborator -> its tasks this round (never empty)
    started_at: float  # monotonic clock
    closing: bool = False
    committed: dict[TaskKey, TaskOutcome] = field(default_factory=dict)
    failed: dict[TaskKey, str] = field(default_factory=dict)  # refused results: not aggregated
    # collaborator -> why its task failed (it said so): its other tasks of the round end unreported
    gave_up: dict[str, str] = field(default_factory=dict)
    in_flight: set[TaskKey] = field(default_factory=set)
    # task -> the collaborator whose result streams in the task's direct lane (see ResultSlots)
    direct_lanes: dict[str, str] = field(default_factory=dict)
    # task -> its new tensor values, computed as soon as the task's results were final (see
    # `is_task_final`), while the round still waited for other tasks
    aggregated: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    _tasks_left: dict[str, int] = field(init=False, repr=False)  # collaborator -> tasks not finished
    _holders_left: dict[str, int] = field(init=False, repr=False)  # task -> collaborators not finished
    _finished: set[str] = field(init=False, repr=False)
    _committed_tasks: set[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._tasks_left = {name: len(tasks) for name, tasks in self.assignments.items()}
        self._holders_left = {}
        for tasks in self.assignments.values():
            for task in tasks:
                self._holders_left[task] = self._holders_left.get(task, 0) + 1
        self._finished = {name for name, left in self._tasks_left.items() if left == 0}
        self._committed_tasks = set()

    def record_commit(self, key: TaskKey, outcome: TaskOutcome) -> None:
        """The result `key` counts."""
        self._finish(key)
        self.committed[key] = outcome
        self._committed_tasks.add(key[1])

    def record_failure(self, key: TaskKey, reason: str) -> None:
        """The result `key` was refused: it is finished without counting."""
        self._finish(key)
        self.failed[key] = reason

    def give_up(self, collaborator: str, reason: str) -> None:
        """`collaborator`'s task failed: its tasks not yet received end without a result. One being
        received right now still counts if it arrives whole."""
        self.gave_up.setdefault(collaborator, reason)
        self._end_tasks_of(collaborator, f"task failed: {reason}")

    def drop(self, collaborator: str) -> None:
        """`collaborator` left the federation: its tasks not yet received end without a result."""
        self._end_tasks_of(collaborator, "removed from the federation")

    def _end_tasks_of(self, collaborator: str, reason: str) -> None:
        for task in self.tasks_of(collaborator):
            key = (collaborator, task)
            if not self.is_finished(key) and key not in self.in_flight:
                self.record_failure(key, reason)

    def _finish(self, key: TaskKey) -> None:
        name, task = key
        if self.is_finished(key) or task not in self.assignments.get(name, ()):
            return
        self._tasks_left[name] -= 1
        self._holders_left[task] -= 1
        if self._tasks_left[name] == 0:
            self._finished.add(name)

    def tasks_of(self, collaborator: str) -> tuple[str, ...]:
        return self.assignments.get(collaborator, ())

    def is_finished(self, key: TaskKey) -> bool:
        return key in self.committed or key in self.failed

    def remaining(self, collaborator: str) -> tuple[str, ...]:
        """Tasks still to run: neither received, nor refused, nor being received right now."""
        return tuple(
            task
            for task in self.tasks_of(collaborator)
            if not self.is_finished((collaborator, task)) and (collaborator, task) not in self.in_flight
        )

    def finished_collaborators(self) -> Set[str]:
        """Collaborators whose every task of the round was received or refused (a live view)."""
        return self._finished

    def is_task_final(self, task: str) -> bool:
        """Every collaborator assigned `task` this round has its result received or refused: nothing
        more can change the task's aggregate."""
        return self._holders_left.get(task, 0) == 0

    def has_committed(self, task: str) -> bool:
        return task in self._committed_tasks

    def contributors(self) -> set[str]:
        """Collaborators with at least one result that counts."""
        return {name for name, _ in self.committed}

    def task_results(self) -> dict[str, list[tuple[Mapping[str, float], float]]]:
        """Task -> [(metrics, sample count)] of the results that count, in collaborator order."""
        grouped: dict[str, list[tuple[Mapping[str, float], float]]] = {}
        for (_, task), outcome in sorted(self.committed.items()):
            grouped.setdefault(task, []).append((outcome.metrics, float(outcome.sample_count)))
        return grouped

    def collaborator_records(self) -> list[MetricRecord]:
        return [
            MetricRecord(self.number, name, task, metric, value)
            for (name, task), outcome in sorted(self.committed.items())
            for metric, value in outcome.metrics.items()
        ]
