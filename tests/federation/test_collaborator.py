"""The collaborator's task loop with a fake aggregator link and a fake task runner."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

from openfl_cli.errors import FxError
from openfl_cli.federation.collaborator import Collaborator
from openfl_cli.runners.base import OPT_PREFIX, TaskRunner
from openfl_cli.transport.messages import (
    Action,
    PingReply,
    RefusalCode,
    Refused,
    SendReport,
    TaskAssignment,
    TaskFailure,
    TaskSpec,
)

VALIDATE_GLOBAL = TaskSpec(
    "aggregated_model_validation", "validate_task", {"apply": "global", "metrics": ["acc"]}
)
TRAIN = TaskSpec("train", "train_task", {"epochs": 1, "metrics": ["loss"]})
VALIDATE_LOCAL = TaskSpec(
    "locally_tuned_model_validation", "validate_task", {"apply": "local", "metrics": ["acc"]}
)
ALL = (VALIDATE_GLOBAL, TRAIN, VALIDATE_LOCAL)


class FakeRunner(TaskRunner):
    """One weight `w` and one optimizer slot; training adds 1 to `w` and counts steps in the slot.
    `acc` reports the weight it validated, so tests see which weights were loaded."""

    def __init__(self) -> None:
        super().__init__(None)
        self.w = np.zeros(4, np.float32)
        self.slot = np.zeros(4, np.float32)
        self.resets = 0
        self.loads: list[bool] = []  # one entry per set_tensor_dict: with optimizer tensors?

    def get_tensor_dict(self, with_opt_vars: bool = False) -> dict[str, np.ndarray]:
        tensors = {"w": self.w.copy()}
        if with_opt_vars:
            tensors[OPT_PREFIX + "w"] = self.slot.copy()
        return tensors

    def set_tensor_dict(self, tensors: Mapping[str, np.ndarray], with_opt_vars: bool = False) -> None:
        self.loads.append(with_opt_vars)
        self.w = np.array(tensors["w"], copy=True)
        if with_opt_vars and OPT_PREFIX + "w" in tensors:
            self.slot = np.array(tensors[OPT_PREFIX + "w"], copy=True)

    def reset_opt_vars(self) -> None:
        self.slot = np.zeros(4, np.float32)
        self.resets += 1

    def train_epoch(self, round_number: int, **kwargs: Any) -> dict[str, float]:
        self.w = self.w + 1
        self.slot = self.slot + 1
        return {"loss": 1.0 / (round_number + 1)}

    def validate_pass(self, round_number: int, **kwargs: Any) -> dict[str, float]:
        return {"acc": float(self.w[0])}

    @property
    def train_sample_count(self) -> int:
        return 50

    @property
    def valid_sample_count(self) -> int:
        return 20


class FakeLink:
    def __init__(
        self, script: list[TaskAssignment], refusals: dict[tuple[int, str], Refused] | None = None
    ) -> None:
        self.script = list(script)
        self.refusals = refusals or {}
        self.sent: list[tuple[int, str, dict[str, float], int, dict[str, np.ndarray]]] = []
        self.downloads: list[int] = []
        self.failures: list[TaskFailure] = []

    def ping(self) -> PingReply:
        return PingReply("agg", "h", 0, 2)

    def get_tasks(self, wait_seconds: float) -> TaskAssignment:
        return self.script.pop(0) if self.script else TaskAssignment(Action.QUIT)

    def get_model(self, round_number: int) -> dict[str, np.ndarray]:
        self.downloads.append(round_number)
        return {"w": np.full(4, 10.0 * (round_number + 1), np.float32)}

    def send_result(
        self,
        round_number: int,
        task_name: str,
        metrics: Mapping[str, float],
        sample_count: int,
        tensors: Mapping[str, np.ndarray],
    ) -> SendReport:
        refusal = self.refusals.get((round_number, task_name))
        if refusal is not None:
            raise refusal
        self.sent.append((round_number, task_name, dict(metrics), sample_count, dict(tensors)))
        size = sum(a.nbytes for a in tensors.values())
        return SendReport(size, size)

    def report_failure(self, failure: TaskFailure) -> None:
        self.failures.append(failure)


def run(script: list[TaskAssignment], **kwargs: Any) -> tuple[FakeLink, FakeRunner, Collaborator]:
    refusals = kwargs.pop("refusals", None)
    link, runner = FakeLink(script, refusals), FakeRunner()
    collaborator = Collaborator("one", runner, link, training_task=TRAIN, retry_interval=0.01, **kwargs)
    collaborator.run()
    return link, runner, collaborator


def rounds(*numbers: int, tasks: tuple[TaskSpec, ...] = ALL) -> list[TaskAssignment]:
    return [TaskAssignment(Action.RUN, n, tasks) for n in numbers]


def test_runs_every_task_on_the_right_weights() -> None:
    link, runner, collaborator = run([*rounds(0), TaskAssignment(Action.WAIT), *rounds(1)])
    assert link.downloads == [0, 1]
    by_task = {(r, task): (metrics, count, tensors) for r, task, metrics, count, tensors in link.sent}
    assert by_task[(0, "aggregated_model_validation")][0] == {"acc": 10.0}  # the global model
    assert by_task[(0, "locally_tuned_model_validation")][0] == {"acc": 11.0}  # the trained one
    assert by_task[(1, "aggregated_model_validation")][0] == {"acc": 20.0}
    metrics, count, tensors = by_task[(0, "train")]
    assert count == 50 and metrics == {"loss": 1.0}
    assert sorted(tensors) == ["w"]  # RESET: optimizer state stays home
    assert tensors["w"].tolist() == [11.0] * 4
    assert runner.resets >= 2
    assert collaborator.rounds_worked == {0, 1}


def test_weights_the_runner_already_holds_are_not_loaded_again() -> None:
    """Validation leaves the global weights in place for training, and training leaves its result in
    place for the local validation: one load per round, the optimizer still reset for training."""
    link, runner, _ = run(rounds(0, 1))
    assert runner.loads == [False, False]
    assert runner.resets == 2
    metrics = {(r, task): m for r, task, m, _, _ in link.sent}
    assert metrics[(1, "aggregated_model_validation")] == {"acc": 20.0}
    assert metrics[(1, "locally_tuned_model_validation")] == {"acc": 21.0}


def test_continue_global_loads_the_optimizer_tensors_even_over_held_weights() -> None:
    _link, runner, _ = run(rounds(0), opt_treatment="CONTINUE_GLOBAL")
    assert runner.loads == [False, True]  # validation: weights only; training: with optimizer state


def test_after_a_failed_task_the_weights_are_loaded_again() -> None:
    class FailingOnce(FakeRunner):
        failed = False

        def validate_pass(self, round_number: int, **kwargs: Any) -> dict[str, float]:
            if not self.failed:
                self.failed = True
                self.w = self.w * 0  # a half-done task may leave anything behind
                raise RuntimeError("flaky")
            return super().validate_pass(round_number, **kwargs)

    runner = FailingOnce()
    link = FakeLink(rounds(0))
    collaborator = Collaborator("one", runner, link, training_task=TRAIN, retry_interval=0.01)
    collaborator.run()  # reports the failure and goes on asking for tasks
    assert [(f.round_number, f.task_name) for f in link.failures] == [(0, "aggregated_model_validation")]
    assert "RuntimeError: flaky" in link.failures[0].reason
    assert link.sent == []  # the round's other tasks did not run
    link.script = rounds(0)
    collaborator.run()
    train = next(tensors for _, task, _, _, tensors in link.sent if task == "train")
    assert train["w"].tolist() == [11.0] * 4  # trained on the reloaded global model, not on zeros


def test_continue_local_keeps_optimizer_state() -> None:
    _link, runner, _ = run(rounds(0, 1), opt_treatment="CONTINUE_LOCAL")
    assert runner.resets == 0
    assert runner.slot.tolist() == [2.0] * 4


def test_continue_global_sends_optimizer_state() -> None:
    link, _, _ = run(rounds(0), opt_treatment="CONTINUE_GLOBAL")
    train = next(tensors for _, task, _, _, tensors in link.sent if task == "train")
    assert sorted(train) == [OPT_PREFIX + "w", "w"]


def test_delta_updates_send_the_difference() -> None:
    link, _, _ = run(rounds(0), use_delta_updates=True)
    train = next(tensors for _, task, _, _, tensors in link.sent if task == "train")
    assert train["w"].tolist() == [1.0] * 4 and train["w"].dtype == np.float32


def test_late_refusal_moves_on_to_the_next_round() -> None:
    refusals = {(0, "train"): Refused(RefusalCode.LATE, "round 0 is closed")}
    link, _, _ = run(rounds(0, 1), refusals=refusals)
    assert [(r, task) for r, task, *_ in link.sent] == [
        (0, "aggregated_model_validation"),
        (1, "aggregated_model_validation"),
        (1, "train"),
        (1, "locally_tuned_model_validation"),
    ]


def test_a_result_the_aggregator_already_has_counts_as_delivered() -> None:
    """A retried upload whose first attempt arrived (its reply was lost): the round goes on."""
    refusals = {(0, "train"): Refused(RefusalCode.DUPLICATE, "the result of 'train' was already received")}
    link, _, collaborator = run(rounds(0), refusals=refusals)
    assert [task for _, task, *_ in link.sent] == [
        "aggregated_model_validation",
        "locally_tuned_model_validation",
    ]
    assert collaborator.rounds_worked == {0}


def test_invalid_refusal_is_not_repeated() -> None:
    refusals = {(0, "train"): Refused(RefusalCode.INVALID, "NaN")}
    link, _, _collaborator = run([*rounds(0), *rounds(0, tasks=(TRAIN,)), *rounds(1)], refusals=refusals)
    sent = [(r, task) for r, task, *_ in link.sent]
    assert (0, "locally_tuned_model_validation") in sent  # the round went on
    assert sent.count((1, "train")) == 1 and (0, "train") not in sent


def test_authorization_refusal_stops_the_collaborator() -> None:
    refusals = {(0, "aggregated_model_validation"): Refused(RefusalCode.NOT_AUTHORIZED, "revoked")}
    with pytest.raises(Refused, match="revoked"):
        run(rounds(0), refusals=refusals)


def test_restart_mid_round_trains_again_to_validate_locally() -> None:
    link, _, _ = run(rounds(0, tasks=(VALIDATE_LOCAL,)))
    assert [(task, metrics) for _, task, metrics, *_ in link.sent] == [
        ("locally_tuned_model_validation", {"acc": 11.0})
    ]


def test_a_failing_task_is_reported_in_one_line() -> None:
    broken = TaskSpec("train", "no_such_function", {})
    link, _, collaborator = run(rounds(0, tasks=(broken,)))
    [failure] = link.failures
    assert failure.task_name == "train" and "no method 'no_such_function'" in failure.reason
    assert not failure.model_mismatch and collaborator.rounds_worked == set()


def test_an_aborted_experiment_ends_the_collaborator_with_the_reason() -> None:
    stop = TaskAssignment(Action.ABORT, 1, reason="round 2: site2 failed: OOM")
    with pytest.raises(FxError, match="the aggregator stopped the experiment: round 2: site2 failed: OOM"):
        run([stop])


def test_a_global_model_that_does_not_fit_is_reported_before_any_task() -> None:
    class OtherModelLink(FakeLink):
        def get_model(self, round_number: int) -> dict[str, np.ndarray]:
            return {"w": np.zeros(3, np.float32)}  # the runner's "w" has 4 elements

    link, runner = OtherModelLink(rounds(0)), FakeRunner()
    Collaborator("one", runner, link, training_task=TRAIN).run()
    [failure] = link.failures
    assert failure.model_mismatch and "'w' has shape (3,) where (4,) is expected" in failure.reason
    assert link.sent == []


def test_a_round_closed_before_the_download_is_skipped() -> None:
    class ClosingLink(FakeLink):
        def get_model(self, round_number: int) -> dict[str, np.ndarray]:
            if round_number == 0:
                raise Refused(RefusalCode.LATE, "round 0 is closed")
            return super().get_model(round_number)

    link, runner = ClosingLink(rounds(0, 1)), FakeRunner()
    Collaborator("one", runner, link, training_task=TRAIN).run()
    assert {r for r, *_ in link.sent} == {1}


class OverlapProbe:
    """A link whose upload of `train` waits (bounded) until the runner validates the trained weights:
    it completes early only when the two run at the same time."""

    def __init__(self) -> None:
        self.validating_local = threading.Event()
        self.overlapped: list[bool] = []
        self.order: list[str] = []


def probed_run(
    tasks: tuple[TaskSpec, ...], fail_local_validation: bool = False, patience: float = 10.0
) -> tuple[FakeLink, OverlapProbe]:
    probe = OverlapProbe()

    class ProbedRunner(FakeRunner):
        def validate_pass(self, round_number: int, **kwargs: Any) -> dict[str, float]:
            if self.w[0] == 11.0:  # the trained weights
                probe.order.append("validate local")
                probe.validating_local.set()
                if fail_local_validation:
                    raise RuntimeError("validation broke")
            return super().validate_pass(round_number, **kwargs)

    class ProbedLink(FakeLink):
        def send_result(self, round_number: int, task_name: str, *args: Any) -> SendReport:
            if task_name == "train":
                probe.overlapped.append(probe.validating_local.wait(timeout=patience))
            probe.order.append(f"sent {task_name}")
            return super().send_result(round_number, task_name, *args)

    link = ProbedLink(rounds(0, tasks=tasks))
    collaborator = Collaborator("one", ProbedRunner(), link, training_task=TRAIN, retry_interval=0.01)
    collaborator.run()
    if fail_local_validation:
        [failure] = link.failures
        assert failure.task_name == "locally_tuned_model_validation" and "validation broke" in failure.reason
    return link, probe


def test_the_trained_result_is_sent_while_the_local_validation_runs() -> None:
    link, probe = probed_run(ALL)
    assert probe.overlapped == [True]
    # results still arrive in task order
    assert [task for _, task, *_ in link.sent] == [task.name for task in ALL]
    assert probe.order.index("validate local") < probe.order.index("sent locally_tuned_model_validation")


def test_a_result_is_sent_before_a_task_that_may_change_the_weights() -> None:
    second_training = TaskSpec("train_more", "train_task", {"epochs": 1})
    link, probe = probed_run((TRAIN, second_training, VALIDATE_LOCAL), patience=0.2)
    assert probe.overlapped == [False]  # train_more ran only after train's result was sent
    assert [task for _, task, *_ in link.sent] == ["train", "train_more", "locally_tuned_model_validation"]


def test_a_failing_validation_still_lets_the_trained_result_arrive(
    capsys: pytest.CaptureFixture[str],
) -> None:
    link, probe = probed_run(ALL, fail_local_validation=True)
    assert probe.overlapped == [True]
    assert [task for _, task, *_ in link.sent] == ["aggregated_model_validation", "train"]
    assert "round 1/2 train: loss=1 (50 samples)" in capsys.readouterr().out
