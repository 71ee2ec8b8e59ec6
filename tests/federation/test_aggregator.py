"""The aggregator's round state machine, in process (no gRPC): results are fed through its sinks."""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import pytest

from openfl_cli.federation.aggregation import WeightedAverage
from openfl_cli.federation.aggregator import Aggregator, BestMetricRule, RoundOutputs
from openfl_cli.federation.assigner import RandomGroupedAssigner
from openfl_cli.federation.state import SqliteStateStore
from openfl_cli.federation.straggler import CutoffTimePolicy, StragglerPolicy, WaitForAllPolicy
from openfl_cli.tensors.snapshot import load_snapshot
from openfl_cli.transport.messages import Action, RefusalCode, Refused, TaskSpec

PLAN = "c" * 96
TASKS = {
    "aggregated_model_validation": TaskSpec(
        "aggregated_model_validation", "validate_task", {"apply": "global"}
    ),
    "train": TaskSpec("train", "train_task", {"epochs": 1}),
    "locally_tuned_model_validation": TaskSpec(
        "locally_tuned_model_validation", "validate_task", {"apply": "local"}
    ),
}
MODEL = {"w": np.zeros((3, 2), np.float32), "steps": np.array([0], np.int64)}


def make(
    tmp_path: Path,
    collaborators: tuple[str, ...] = ("one", "two"),
    *,
    rounds: int = 2,
    straggler: StragglerPolicy | None = None,
    store: SqliteStateStore | None = None,
    model: Mapping[str, np.ndarray] = MODEL,
    start_round: int = 0,
    assigner: object = None,
    **kwargs: object,
) -> tuple[Aggregator, RoundOutputs]:
    outputs = RoundOutputs(
        last_path=tmp_path / "last.pbuf", best_path=tmp_path / "best.pbuf", rule=BestMetricRule(), store=store
    )
    aggregator = Aggregator(
        plan_hash=PLAN,
        collaborators=collaborators,
        tasks=TASKS,
        assigner=assigner or RandomGroupedAssigner(collaborators=collaborators),
        straggler=straggler or WaitForAllPolicy(),
        functions={name: WeightedAverage() for name in TASKS},
        model=model,
        rounds_to_train=rounds,
        outputs=outputs,
        start_round=start_round,
        quit_grace=0.3,
        **kwargs,  # type: ignore[arg-type]
    )
    return aggregator, outputs


def send(
    aggregator: Aggregator,
    name: str,
    round_number: int,
    task: str,
    *,
    metrics: Mapping[str, float] | None = None,
    count: int = 10,
    tensors: Mapping[str, np.ndarray] | None = None,
) -> None:
    tensors = tensors or {}
    sink = aggregator.open_result(name, round_number, task, metrics or {}, count, list(tensors))
    try:
        for tensor_name, array in tensors.items():
            sink.add(tensor_name, array)
        sink.commit()
    except BaseException as exc:
        sink.abort(str(exc))
        raise


def work_round(
    aggregator: Aggregator, name: str, r: int, value: float, count: int = 10, acc: float = 0.5
) -> None:
    send(aggregator, name, r, "aggregated_model_validation", metrics={"acc": acc}, count=count)
    trained = {"w": np.full((3, 2), value, np.float32), "steps": np.array([r + 1], np.int64)}
    send(aggregator, name, r, "train", metrics={"loss": value}, count=count, tensors=trained)
    send(aggregator, name, r, "locally_tuned_model_validation", metrics={"acc": acc}, count=count)


@pytest.fixture
def running() -> Iterator[list[threading.Thread]]:
    threads: list[threading.Thread] = []
    yield threads
    for thread in threads:
        thread.join(timeout=10)
        assert not thread.is_alive(), "the aggregator did not finish"


def start(aggregator: Aggregator, threads: list[threading.Thread]) -> threading.Thread:
    thread = threading.Thread(target=aggregator.run, daemon=True)
    thread.start()
    threads.append(thread)
    return thread


def wait_round(aggregator: Aggregator, number: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while aggregator.round_number != number:
        assert time.monotonic() < deadline, f"round {number} never opened (at {aggregator.round_number})"
        time.sleep(0.005)


def test_full_experiment_weighted_by_samples(tmp_path: Path, running: list[threading.Thread]) -> None:
    aggregator, _ = make(tmp_path)
    start(aggregator, running)
    first = aggregator.get_tasks("one", 0)
    assert first.action is Action.RUN and first.round_number == 0
    assert [task.name for task in first.tasks] == list(TASKS)
    work_round(aggregator, "one", 0, 1.0, count=30, acc=0.2)
    work_round(aggregator, "two", 0, 5.0, count=10, acc=0.6)
    wait_round(aggregator, 1)
    np.testing.assert_allclose(aggregator.model["w"], np.full((3, 2), 2.0))  # (1*30 + 5*10) / 40
    assert aggregator.model["w"].dtype == np.float32
    assert aggregator.model["steps"].tolist() == [1]  # both agree on the integer tensor
    work_round(aggregator, "one", 1, 3.0, acc=0.9)
    work_round(aggregator, "two", 1, 3.0, acc=0.9)
    assert aggregator.get_tasks("one", 5).action is Action.QUIT
    assert aggregator.get_tasks("two", 5).action is Action.QUIT
    running[0].join(5)
    assert aggregator.finished
    assert load_snapshot(tmp_path / "last.pbuf").tensors["w"].tolist() == [[3.0, 3.0]] * 3
    # round 2 validated (acc 0.9) the model round 1 produced: that model is the best one
    np.testing.assert_allclose(load_snapshot(tmp_path / "best.pbuf").tensors["w"], np.full((3, 2), 2.0))


def test_a_task_is_aggregated_as_soon_as_its_results_are_final(
    tmp_path: Path, running: list[threading.Thread]
) -> None:
    """Training is averaged while the round still waits for the local validations; the close uses it."""
    aggregator, _ = make(tmp_path, rounds=1)
    start(aggregator, running)
    for name, value, count in (("one", 1.0, 30), ("two", 5.0, 10)):
        send(aggregator, name, 0, "aggregated_model_validation", metrics={"acc": 0.5})
        trained = {"w": np.full((3, 2), value, np.float32), "steps": np.array([1], np.int64)}
        send(aggregator, name, 0, "train", metrics={"loss": value}, count=count, tensors=trained)
    state = aggregator._round
    assert state is not None
    deadline = time.monotonic() + 5
    while "train" not in state.aggregated:
        assert time.monotonic() < deadline, "train was not aggregated ahead of the close"
        time.sleep(0.005)
    # a task without tensors changed nothing: the record does not keep the global arrays alive
    assert state.aggregated["aggregated_model_validation"] == {}
    assert "locally_tuned_model_validation" not in state.aggregated  # still waiting for both
    np.testing.assert_allclose(state.aggregated["train"]["w"], np.full((3, 2), 2.0))
    for name in ("one", "two"):
        send(aggregator, name, 0, "locally_tuned_model_validation", metrics={"acc": 0.5})
    running[0].join(5)
    assert aggregator.finished
    np.testing.assert_allclose(load_snapshot(tmp_path / "last.pbuf").tensors["w"], np.full((3, 2), 2.0))


def test_long_poll_is_answered_as_soon_as_the_round_opens(
    tmp_path: Path, running: list[threading.Thread]
) -> None:
    aggregator, _ = make(tmp_path)
    start(aggregator, running)
    work_round(aggregator, "one", 0, 1.0)
    answers: list[tuple[float, object]] = []

    def poll() -> None:
        began = time.monotonic()
        answer = aggregator.get_tasks("one", 20.0)
        answers.append((time.monotonic() - began, answer))

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.2)
    assert not answers, "a collaborator done with the round must wait"
    work_round(aggregator, "two", 0, 1.0)
    poller.join(5)
    waited, answer = answers[0]
    assert answer.action is Action.RUN and answer.round_number == 1  # type: ignore[attr-defined]
    assert waited < 2.0
    aggregator.stop()


def test_long_poll_times_out_with_wait(tmp_path: Path) -> None:
    aggregator, _ = make(tmp_path)
    work_round(aggregator, "one", 0, 1.0)
    began = time.monotonic()
    assert aggregator.get_tasks("one", 0.2).action is Action.WAIT
    assert 0.15 < time.monotonic() - began < 2.0


@pytest.mark.parametrize(
    ("tensor", "reason"),
    [
        (np.full((3, 2), np.nan, np.float32), "NaN"),
        (np.full((3, 2), np.inf, np.float32), "NaN or infinite"),
        (np.zeros((2, 3), np.float32), "[2, 3]"),
        (np.zeros((3, 2), np.float64), "float64"),
    ],
)
def test_bad_tensors_are_refused_and_the_round_goes_on(
    tmp_path: Path, running: list[threading.Thread], tensor: np.ndarray, reason: str
) -> None:
    aggregator, _ = make(tmp_path, rounds=1)
    start(aggregator, running)
    with pytest.raises(Refused) as refused:
        send(aggregator, "two", 0, "train", tensors={"w": tensor})
    assert refused.value.code is RefusalCode.INVALID and reason in refused.value.reason
    assert [t.name for t in aggregator.get_tasks("two", 0).tasks] == [
        "aggregated_model_validation",
        "locally_tuned_model_validation",
    ]  # a refused result is not asked for again
    send(aggregator, "two", 0, "aggregated_model_validation", metrics={"acc": 0.1})
    send(aggregator, "two", 0, "locally_tuned_model_validation", metrics={"acc": 0.1})
    work_round(aggregator, "one", 0, 4.0)
    running[0].join(5)
    assert load_snapshot(tmp_path / "last.pbuf").tensors["w"].tolist() == [[4.0, 4.0]] * 3


def test_unknown_tensor_and_missing_tensor_are_refused(tmp_path: Path) -> None:
    aggregator, _ = make(tmp_path)
    with pytest.raises(Refused, match="not part of the global model"):
        send(aggregator, "one", 0, "train", tensors={"x": np.zeros(2, np.float32)})
    aggregator2, _ = make(tmp_path / "b")
    sink = aggregator2.open_result("one", 0, "train", {}, 5, ["w", "steps"])
    sink.add("w", np.zeros((3, 2), np.float32))
    with pytest.raises(Refused, match="missing: steps"):
        sink.commit()


def test_broken_upload_is_undone_and_asked_again(tmp_path: Path, running: list[threading.Thread]) -> None:
    aggregator, _ = make(tmp_path, rounds=1)
    start(aggregator, running)
    sink = aggregator.open_result("one", 0, "train", {"loss": 1.0}, 10, ["w", "steps"])
    sink.add("w", np.full((3, 2), 100.0, np.float32))
    assert "train" not in [t.name for t in aggregator.get_tasks("one", 0).tasks]  # in flight
    sink.abort("stream broke (connection reset)")
    assert "train" in [t.name for t in aggregator.get_tasks("one", 0).tasks]
    work_round(aggregator, "one", 0, 2.0)
    work_round(aggregator, "two", 0, 2.0)
    running[0].join(5)
    assert load_snapshot(tmp_path / "last.pbuf").tensors["w"].tolist() == [[2.0, 2.0]] * 3


def test_late_duplicate_and_unassigned_results(tmp_path: Path, running: list[threading.Thread]) -> None:
    aggregator, _ = make(tmp_path, rounds=3)
    start(aggregator, running)
    send(aggregator, "one", 0, "aggregated_model_validation", metrics={"acc": 0.3})
    with pytest.raises(Refused) as duplicate:
        send(aggregator, "one", 0, "aggregated_model_validation", metrics={"acc": 0.3})
    assert duplicate.value.code is RefusalCode.DUPLICATE
    assert "already received" in duplicate.value.reason
    with pytest.raises(Refused) as unknown:
        send(aggregator, "one", 0, "no_such_task")
    assert unknown.value.code is RefusalCode.UNKNOWN_TASK
    with pytest.raises(Refused) as bad_metric:
        send(aggregator, "one", 0, "train", metrics={"loss": float("nan")})
    assert bad_metric.value.code is RefusalCode.INVALID
    work_round(aggregator, "two", 0, 1.0)
    send(aggregator, "one", 0, "train", tensors={"w": np.ones((3, 2), np.float32)})
    send(aggregator, "one", 0, "locally_tuned_model_validation", metrics={"acc": 0.3})
    wait_round(aggregator, 1)
    with pytest.raises(Refused) as late:
        send(aggregator, "one", 0, "train", tensors={"w": np.ones((3, 2), np.float32)})
    assert late.value.code is RefusalCode.LATE
    with pytest.raises(Refused) as late_model:
        aggregator.model_for("one", 0)
    assert late_model.value.code is RefusalCode.LATE
    aggregator.stop()


def test_cutoff_policy_closes_out_a_straggler(tmp_path: Path, running: list[threading.Thread]) -> None:
    policy = CutoffTimePolicy(straggler_cutoff_time=0.3, minimum_reporting=1)
    aggregator, _ = make(tmp_path, rounds=1, straggler=policy)
    began = time.monotonic()
    start(aggregator, running)
    work_round(aggregator, "one", 0, 7.0)
    send(aggregator, "two", 0, "aggregated_model_validation", metrics={"acc": 0.1})  # then never trains
    running[0].join(5)
    assert 0.25 < time.monotonic() - began < 3.0
    assert load_snapshot(tmp_path / "last.pbuf").tensors["w"].tolist() == [[7.0, 7.0]] * 3
    with pytest.raises(Refused) as late:
        send(aggregator, "two", 0, "train", tensors={"w": np.ones((3, 2), np.float32)})
    assert late.value.code is RefusalCode.LATE


def test_delta_updates_are_applied(tmp_path: Path, running: list[threading.Thread]) -> None:
    model = {"w": np.full((3, 2), 10.0, np.float32), "steps": np.array([0], np.int64)}
    aggregator, _ = make(tmp_path, rounds=1, model=model, use_delta_updates=True)
    start(aggregator, running)
    for name, delta in (("one", 1.0), ("two", 3.0)):
        tensors = {"w": np.full((3, 2), delta, np.float32), "steps": np.array([1], np.int64)}
        send(aggregator, name, 0, "train", tensors=tensors)
        send(aggregator, name, 0, "aggregated_model_validation", metrics={"acc": 0.1})
        send(aggregator, name, 0, "locally_tuned_model_validation", metrics={"acc": 0.1})
    running[0].join(5)
    final = load_snapshot(tmp_path / "last.pbuf").tensors
    assert final["w"].tolist() == [[12.0, 12.0]] * 3 and final["steps"].tolist() == [1]


def test_resume_from_the_state_store(tmp_path: Path, running: list[threading.Thread]) -> None:
    store = SqliteStateStore(tmp_path / "state.db", PLAN, db_store_rounds=2)
    aggregator, outputs = make(tmp_path, rounds=3, store=store)
    start(aggregator, running)
    work_round(aggregator, "one", 0, 2.0, acc=0.4)
    work_round(aggregator, "two", 0, 2.0, acc=0.4)
    wait_round(aggregator, 1)
    send(aggregator, "one", 1, "aggregated_model_validation", metrics={"acc": 0.3})  # lost with the "crash"
    aggregator.stop()
    running[0].join(5)
    running.clear()
    outputs.close()

    store = SqliteStateStore(tmp_path / "state.db", PLAN, db_store_rounds=2)
    outputs = RoundOutputs(
        last_path=tmp_path / "last.pbuf", best_path=tmp_path / "best.pbuf", rule=BestMetricRule(), store=store
    )
    resume = outputs.resume_point()
    assert resume is not None and resume.next_round == 1
    assert resume.best is not None and resume.best.value == pytest.approx(0.4)
    aggregator, _ = make(tmp_path, rounds=3, store=store, model=resume.model, start_round=resume.next_round)
    assert aggregator.round_number == 1
    assert [t.name for t in aggregator.get_tasks("one", 0).tasks] == list(TASKS)  # the round is redone
    np.testing.assert_allclose(aggregator.model["w"], np.full((3, 2), 2.0))
    outputs.close()


def _open_in_thread(aggregator: Aggregator, name: str) -> tuple[threading.Thread, threading.Event, list]:
    opened = threading.Event()
    sinks: list = []

    def open_result() -> None:
        sinks.append(aggregator.open_result(name, 0, "train", {}, 1, ["w"]))
        opened.set()

    thread = threading.Thread(target=open_result)
    thread.start()
    return thread, opened, sinks


def test_bounded_results_in_flight(tmp_path: Path) -> None:
    """The first result folds directly (its own lane); one more may stage; a third waits for a slot."""
    aggregator, _ = make(tmp_path, ("one", "two", "three"), max_concurrent_results=1)
    first = aggregator.open_result("one", 0, "train", {}, 1, ["w"])
    assert first.holds_lane and not first.holds_slot
    second = aggregator.open_result("two", 0, "train", {}, 1, ["w"])  # no wait: the slot is free
    assert second.holds_slot and not second.holds_lane
    thread, opened, sinks = _open_in_thread(aggregator, "three")
    assert not opened.wait(0.3), "a third result must wait for a slot"
    first.add("w", np.ones((3, 2), np.float32))
    first.commit()  # frees the lane, not a slot: the third still waits
    assert not opened.wait(0.3), "the lane of a committed task must not open again"
    second.abort("done")
    assert opened.wait(3)
    thread.join()
    assert sinks[0].holds_slot and not sinks[0].holds_lane
    sinks[0].abort("test over")


def test_a_staged_result_commits_after_the_lane(tmp_path: Path) -> None:
    """The result beside the lane waits for it: committing first would turn the lane's direct folds into
    staged copies and extra sums (beyond the memory bound). Both count, averaged exactly."""
    aggregator, _ = make(tmp_path, ("one", "two"), max_concurrent_results=1)
    lane = aggregator.open_result("one", 0, "train", {}, 1, ["w"])
    staged = aggregator.open_result("two", 0, "train", {}, 3, ["w"])
    staged.add("w", np.full((3, 2), 4.0, np.float32))
    committed = threading.Event()

    def commit_staged() -> None:
        staged.commit()
        committed.set()

    thread = threading.Thread(target=commit_staged)
    thread.start()
    assert not committed.wait(0.3), "the staged result must wait for the lane"
    lane.add("w", np.full((3, 2), 8.0, np.float32))
    lane.commit()
    assert committed.wait(3)
    thread.join()
    functions = aggregator._functions
    np.testing.assert_allclose(functions["train"].end_round()["w"], np.full((3, 2), 5.0))  # (8 + 3*4) / 4


def test_a_staged_result_is_received_into_its_staging_array(tmp_path: Path) -> None:
    """The lane folds from the transport's buffer; a staged result is received into an array the
    aggregation function keeps as is (no copy), and a NaN in it is still refused."""
    aggregator, _ = make(tmp_path, ("one", "two", "three"), max_concurrent_results=1)
    lane = aggregator.open_result("one", 0, "train", {}, 1, ["w"])
    assert lane.destination("w") is None
    staged = aggregator.open_result("two", 0, "train", {}, 3, ["w"])
    target = staged.destination("w")
    assert target is not None and target.shape == (3, 2) and target.dtype == np.float32
    assert staged.destination("w") is None  # one array per announced tensor
    target[...] = np.nan
    with pytest.raises(Refused, match="NaN"):
        staged.add("w", target)
    staged.abort("refused")
    third = aggregator.open_result("three", 0, "train", {}, 3, ["w"])
    target = third.destination("w")
    assert target is not None
    target[...] = 4.0
    third.add("w", target)
    lane.add("w", np.full((3, 2), 8.0, np.float32))
    lane.commit()
    third.commit()
    np.testing.assert_allclose(aggregator._functions["train"].end_round()["w"], np.full((3, 2), 5.0))


def test_an_aborted_lane_opens_again(tmp_path: Path) -> None:
    aggregator, _ = make(tmp_path, ("one", "two", "three"), max_concurrent_results=1)
    first = aggregator.open_result("one", 0, "train", {}, 1, ["w"])
    first.add("w", np.ones((3, 2), np.float32))
    first.abort("connection lost")  # nothing committed: the next result may fold directly
    again = aggregator.open_result("two", 0, "train", {}, 1, ["w"])
    assert again.holds_lane
    again.abort("test over")


def test_staging_functions_have_no_direct_lane(tmp_path: Path) -> None:
    from openfl_cli.federation.aggregation import Median

    aggregator, _ = make(tmp_path, ("one", "two"), max_concurrent_results=1)
    aggregator._functions["train"] = Median()  # stages every result: each one needs a slot
    first = aggregator.open_result("one", 0, "train", {}, 1, ["w"])
    assert first.holds_slot and not first.holds_lane
    thread, opened, sinks = _open_in_thread(aggregator, "two")
    assert not opened.wait(0.3)
    first.abort("done")
    assert opened.wait(3)
    thread.join()
    sinks[0].abort("test over")


def test_ping_and_quit_when_already_complete(tmp_path: Path) -> None:
    aggregator, _ = make(tmp_path, rounds=2, start_round=2)
    assert aggregator.finished
    assert aggregator.ping("one").rounds_to_train == 2
    assert aggregator.get_tasks("one", 1).action is Action.QUIT
    assert aggregator.get_tasks("two", 1).action is Action.QUIT
    began = time.monotonic()
    aggregator.run()  # everybody was told: returns at once
    assert time.monotonic() - began < 1.0


def test_every_metric_reaches_the_writers(tmp_path: Path, running: list[threading.Thread]) -> None:
    from openfl_cli.federation.metrics import CallbackMetricWriter

    seen: list[tuple[str, str, str, int, float]] = []
    aggregator, outputs = make(tmp_path, rounds=1)
    outputs.writer = CallbackMetricWriter(lambda *args: seen.append(args))
    start(aggregator, running)
    work_round(aggregator, "one", 0, 1.0, count=30, acc=0.2)
    work_round(aggregator, "two", 0, 1.0, count=10, acc=0.6)
    running[0].join(5)
    assert ("one", "train", "loss", 0, 1.0) in seen
    assert ("two", "aggregated_model_validation", "acc", 0, 0.6) in seen
    aggregated = {(task, metric): (r, value) for node, task, metric, r, value in seen if node == "aggregator"}
    assert aggregated[("aggregated_model_validation", "acc")] == (
        0,
        pytest.approx(0.3),
    )  # (0.2*30 + 0.6*10) / 40
    assert aggregated[("train", "loss")] == (0, pytest.approx(1.0))


def test_static_groups_and_percentage_policy(tmp_path: Path, running: list[threading.Thread]) -> None:
    from openfl_cli.federation.assigner import StaticGroupedAssigner
    from openfl_cli.federation.straggler import PercentagePolicy

    names = ("one", "two", "three")
    groups = [
        {"name": "trainers", "collaborators": ["one", "two"], "tasks": ["train"]},
        {"name": "judges", "collaborators": ["three"], "tasks": ["aggregated_model_validation"]},
    ]
    aggregator, _ = make(
        tmp_path,
        names,
        rounds=1,
        straggler=PercentagePolicy(percent_collaborators_needed=0.6),
        assigner=StaticGroupedAssigner(task_groups=groups, collaborators=names),
    )
    assert [t.name for t in aggregator.get_tasks("three", 0).tasks] == ["aggregated_model_validation"]
    assert [t.name for t in aggregator.get_tasks("one", 0).tasks] == ["train"]
    start(aggregator, running)
    send(aggregator, "one", 0, "train", tensors={"w": np.full((3, 2), 6.0, np.float32)})
    send(aggregator, "three", 0, "aggregated_model_validation", metrics={"acc": 0.4})
    running[0].join(5)  # 2 of 3 reported: ceil(0.6 * 3) = 2, so "two" is not waited for
    assert aggregator.finished
    assert load_snapshot(tmp_path / "last.pbuf").tensors["w"].tolist() == [[6.0, 6.0]] * 3


def test_the_writer_lets_the_best_model_go_once_best_pbuf_is_written(tmp_path: Path) -> None:
    """The round's starting model is kept for best.pbuf only: the slower writes after it (last.pbuf,
    the store's commit) must not hold it, or a pending write keeps one model more in memory."""
    from openfl_cli.federation.aggregator.outputs import RoundRecord
    from openfl_cli.federation.state.base import BestMetric

    start_model = {"w": np.ones((3, 2), np.float32)}
    start_alive = weakref.ref(start_model["w"])
    alive_at_commit: list[bool] = []

    class WatchingStore(SqliteStateStore):
        def commit_round(self, *args: object, **kwargs: object) -> None:
            alive_at_commit.append(start_alive() is not None)
            super().commit_round(*args, **kwargs)  # type: ignore[arg-type]

    outputs = RoundOutputs(
        last_path=tmp_path / "last.pbuf",
        best_path=tmp_path / "best.pbuf",
        rule=BestMetricRule(),
        store=WatchingStore(tmp_path / "state.db", PLAN),
    )
    record = RoundRecord(
        number=0,
        new_model={"w": np.full((3, 2), 2.0, np.float32)},
        aggregated={"aggregated_model_validation": {"acc": 0.5}},
        collaborator_records=[],
        aggregation_state={},
        best=BestMetric(0.5, 0),
        best_model=start_model,
    )
    del start_model
    outputs.round_closed(record)
    assert alive_at_commit == [False]
    assert load_snapshot(tmp_path / "best.pbuf").tensors["w"].tolist() == [[1.0, 1.0]] * 3
    outputs.close()
