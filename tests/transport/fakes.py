"""An in-memory FederationService standing in for the aggregator."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from openfl_cli.transport.messages import (
    Action,
    PingReply,
    RefusalCode,
    Refused,
    TaskAssignment,
    TaskFailure,
    TaskSpec,
)

PLAN_HASH = "ab" * 48


@dataclass
class Result:
    collaborator: str
    round_number: int
    task_name: str
    metrics: dict[str, float]
    sample_count: int
    tensors: dict[str, np.ndarray] = field(default_factory=dict)


class FakeSink:
    def __init__(self, service: FakeService, result: Result, names: list[str]) -> None:
        self._service = service
        self.result = result
        self._names = names

    def destination(self, name: str) -> np.ndarray | None:
        return None

    def add(self, name: str, array: np.ndarray) -> None:
        reference = self._service.model[name]
        if array.dtype != reference.dtype or array.shape != reference.shape:
            raise Refused(RefusalCode.INVALID, f"{name}: wrong dtype or shape")
        self.result.tensors[name] = array.copy()  # the transport reuses its buffer

    def commit(self) -> None:
        if sorted(self.result.tensors) != sorted(self._names):
            raise Refused(RefusalCode.INVALID, "tensors missing")
        self._service.results.append(self.result)

    def abort(self, reason: str) -> None:
        self._service.aborted.append(reason)


class FakeService:
    def __init__(self, model: Mapping[str, np.ndarray], plan_hash: str = PLAN_HASH) -> None:
        self.plan_hash = plan_hash
        self.model = dict(model)
        self.round_number = 0
        self.results: list[Result] = []
        self.aborted: list[str] = []
        self.failures: list[tuple[str, TaskFailure]] = []
        self.work = threading.Event()

    def ping(self, collaborator: str) -> PingReply:
        return PingReply("aggregator.test", self.plan_hash, self.round_number, 3)

    def get_tasks(self, collaborator: str, wait_seconds: float) -> TaskAssignment:
        if not self.work.wait(wait_seconds):
            return TaskAssignment(Action.WAIT, self.round_number, retry_after=0.0)
        task = TaskSpec("train", "train_task", {"epochs": 1, "note": "é"})
        return TaskAssignment(Action.RUN, self.round_number, (task,))

    def report_failure(self, collaborator: str, failure: TaskFailure) -> None:
        self.failures.append((collaborator, failure))

    def model_for(self, collaborator: str, round_number: int) -> Mapping[str, np.ndarray]:
        if round_number != self.round_number:
            raise Refused(RefusalCode.LATE, f"round {round_number} is closed")
        return self.model

    def open_result(
        self,
        collaborator: str,
        round_number: int,
        task_name: str,
        metrics: Mapping[str, float],
        sample_count: int,
        tensor_names: list[str],
    ) -> FakeSink:
        if any(r.collaborator == collaborator and r.task_name == task_name for r in self.results):
            raise Refused(RefusalCode.DUPLICATE, f"the result of {task_name} was already received")
        if sample_count < 0:
            raise Refused(RefusalCode.INVALID, "negative sample count")
        result = Result(collaborator, round_number, task_name, dict(metrics), sample_count)
        return FakeSink(self, result, tensor_names)
