"""The aggregator when things go wrong: a collaborator's task fails, the global model does not fit,
a collaborator is removed mid-round, the outputs cannot be written, a sender floods long polls."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from openfl_cli.federation.aggregator.core import ExperimentStopped
from openfl_cli.federation.straggler import CutoffTimePolicy, PercentagePolicy, WaitForAllPolicy
from openfl_cli.transport.messages import Action, RefusalCode, Refused, TaskFailure
from tests.federation.test_aggregator import make, wait_round, work_round


def run_in_thread(aggregator: object) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def target() -> None:
        try:
            aggregator.run()  # type: ignore[attr-defined]
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, errors


def fail(aggregator: object, name: str, round_number: int, task: str = "train", **kwargs: object) -> None:
    aggregator.report_failure(name, TaskFailure(round_number, task, "CUDA out of memory", **kwargs))  # type: ignore[attr-defined]


def test_under_wait_for_all_a_failed_task_stops_the_experiment_naming_the_collaborator(
    tmp_path: Path,
) -> None:
    aggregator, outputs = make(tmp_path, ("one", "two"), straggler=WaitForAllPolicy())
    thread, errors = run_in_thread(aggregator)
    work_round(aggregator, "one", 0, 1.0)
    poll = aggregator.get_tasks("one", 0)  # nothing left for one this round
    assert poll.action is Action.WAIT
    started = time.monotonic()
    fail(aggregator, "two", 0)
    told = aggregator.get_tasks("one", 30)
    assert time.monotonic() - started < 2
    assert told.action is Action.ABORT
    assert "two" in told.reason and "CUDA out of memory" in told.reason and "WaitForAllPolicy" in told.reason
    aggregator.get_tasks("two", 0)
    thread.join(5)
    assert not thread.is_alive()
    [error] = errors
    assert isinstance(error, ExperimentStopped) and "round 1" in str(error) and "two" in str(error)
    assert not aggregator.finished
    outputs.close()


@pytest.mark.parametrize(
    "policy",
    [CutoffTimePolicy(straggler_cutoff_time=60, minimum_reporting=1), PercentagePolicy(0.5)],
    ids=["cutoff", "percentage"],
)
def test_a_policy_that_can_do_without_the_failed_collaborator_closes_the_round(
    tmp_path: Path, policy: object
) -> None:
    aggregator, outputs = make(tmp_path, ("one", "two"), rounds=1, straggler=policy)  # type: ignore[arg-type]
    thread, errors = run_in_thread(aggregator)
    work_round(aggregator, "one", 0, 4.0)
    fail(aggregator, "two", 0)
    assert aggregator.get_tasks("one", 5).action is Action.QUIT
    assert aggregator.get_tasks("two", 5).action is Action.QUIT
    thread.join(5)
    assert not errors and aggregator.finished
    np.testing.assert_allclose(aggregator.model["w"], np.full((3, 2), 4.0))  # one's result alone
    outputs.close()


def test_the_last_available_collaborator_failing_stops_a_cutoff_experiment(tmp_path: Path) -> None:
    policy = CutoffTimePolicy(straggler_cutoff_time=60, minimum_reporting=1)
    aggregator, outputs = make(tmp_path, ("one", "two"), straggler=policy)
    thread, errors = run_in_thread(aggregator)
    fail(aggregator, "one", 0)
    assert aggregator.get_tasks("one", 0).action is Action.WAIT  # two may still report
    fail(aggregator, "two", 0)
    assert aggregator.get_tasks("one", 0).action is Action.ABORT
    thread.join(5)
    assert errors and "one" in str(errors[0]) and "two" in str(errors[0])
    outputs.close()


def test_a_model_that_does_not_fit_stops_the_experiment_at_once(tmp_path: Path) -> None:
    policy = CutoffTimePolicy(straggler_cutoff_time=60, minimum_reporting=1)
    aggregator, outputs = make(tmp_path, ("one", "two"), straggler=policy)
    thread, errors = run_in_thread(aggregator)
    aggregator.report_failure(
        "one", TaskFailure(0, "aggregated_model_validation", "'w' has shape (3, 2) where (4,)", True)
    )
    told = aggregator.get_tasks("two", 0)
    assert told.action is Action.ABORT and "does not fit one's model" in told.reason
    with pytest.raises(Refused) as late:
        aggregator.model_for("two", 0)
    assert late.value.code is RefusalCode.LATE
    thread.join(5)
    assert errors and "fx plan initialize" in str(errors[0])
    outputs.close()


def test_failure_reports_are_checked_like_results(tmp_path: Path) -> None:
    aggregator, outputs = make(tmp_path, ("one", "two"))
    with pytest.raises(Refused) as late:
        fail(aggregator, "one", 3)
    assert late.value.code is RefusalCode.LATE
    with pytest.raises(Refused) as unknown:
        fail(aggregator, "one", 0, task="no_such_task")
    assert unknown.value.code is RefusalCode.UNKNOWN_TASK
    outputs.close()


def test_a_collaborator_removed_from_the_roster_leaves_the_round_at_once(tmp_path: Path) -> None:
    members = {"one", "two"}
    aggregator, outputs = make(tmp_path, ("one", "two"), rounds=2, roster=lambda: frozenset(members))
    thread, errors = run_in_thread(aggregator)
    work_round(aggregator, "one", 0, 2.0)
    members.discard("two")  # `fx collaborator remove -n two`
    wait_round(aggregator, 1, timeout=3.0)  # about a second, not forever
    assert aggregator.collaborators == ("one",)
    np.testing.assert_allclose(aggregator.model["w"], np.full((3, 2), 2.0))
    work_round(aggregator, "one", 1, 2.0)
    assert aggregator.get_tasks("one", 5).action is Action.QUIT
    thread.join(5)
    assert not errors and aggregator.finished
    outputs.close()


def test_a_removed_collaborator_result_in_flight_does_not_count(tmp_path: Path) -> None:
    members = {"one", "two"}
    aggregator, outputs = make(tmp_path, ("one", "two"), rounds=1, roster=lambda: frozenset(members))
    thread, errors = run_in_thread(aggregator)
    sink = aggregator.open_result("two", 0, "train", {"loss": 1.0}, 10, ["w"])
    sink.add("w", np.full((3, 2), 9.0, np.float32))
    members.discard("two")
    deadline = time.monotonic() + 3
    while aggregator.collaborators != ("one",):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    with pytest.raises(Refused) as refused:
        sink.commit()
    sink.abort(str(refused.value))
    assert refused.value.code is RefusalCode.NOT_AUTHORIZED
    work_round(aggregator, "one", 0, 1.0)
    thread.join(5)
    assert not errors and aggregator.finished
    np.testing.assert_allclose(aggregator.model["w"], np.full((3, 2), 1.0))
    outputs.close()


def test_a_fatal_write_error_answers_the_long_polls_at_once(tmp_path: Path) -> None:
    aggregator, outputs = make(tmp_path, ("one", "two"), rounds=1)
    (tmp_path / "last.pbuf").mkdir()  # the last model cannot be written
    thread, errors = run_in_thread(aggregator)
    work_round(aggregator, "one", 0, 1.0)
    answers: list[object] = []
    poller = threading.Thread(target=lambda: answers.append(aggregator.get_tasks("one", 30)))
    poller.start()
    started = time.monotonic()
    work_round(aggregator, "two", 0, 1.0)
    poller.join(10)
    thread.join(10)
    assert time.monotonic() - started < 5, "the long poll waited for its timeout"
    [answer] = answers
    assert answer.action is Action.ABORT and "last.pbuf" in answer.reason  # type: ignore[attr-defined]
    assert errors and "last.pbuf" in str(errors[0])
    outputs.close()


def test_a_newer_long_poll_of_the_same_collaborator_ends_the_older(tmp_path: Path) -> None:
    aggregator, outputs = make(tmp_path, ("one", "two"))
    work_round(aggregator, "one", 0, 1.0)  # nothing left for one: its polls wait
    answers: list[tuple[float, Action]] = []
    started = time.monotonic()

    def poll() -> None:
        answer = aggregator.get_tasks("one", 20)
        answers.append((time.monotonic() - started, answer.action))

    older = threading.Thread(target=poll)
    older.start()
    time.sleep(0.2)
    newer = threading.Thread(target=poll)
    newer.start()
    older.join(5)
    assert answers and answers[0][0] < 3 and answers[0][1] is Action.WAIT  # replaced, not 20 s
    aggregator.stop()
    newer.join(5)
    outputs.close()
