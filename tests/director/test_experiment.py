"""ExperimentRecord on its own: watch() replays and follows the events (with heartbeats while nothing
happens), wait_until() ends on readiness, on its timeout or on a lost envoy, and envoy_lost() fails only
that envoy's unfinished tasks."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from openfl_cli.director import experiment as experiment_module
from openfl_cli.director.experiment import ChainTaskRecord, ExperimentFailed, ExperimentRecord
from openfl_cli.proto import director_pb2 as dpb
from openfl_cli.transport.director.state_stream import ReceivedState
from openfl_cli.workflow.experiment import package_experiment

FLOW = """\
from openfl_cli.workflow import FLSpec, aggregator


class RecordedFlow(FLSpec):
    @aggregator
    def start(self):
        self.next(self.end)

    @aggregator
    def end(self):
        pass
"""


@pytest.fixture
def record(tmp_path: Path) -> ExperimentRecord:
    source = tmp_path / "flow.py"
    source.write_text(FLOW)
    package = package_experiment(source, "RecordedFlow")
    initial = ReceivedState(dpb.StateHeader(), b"", {}, 0)
    return ExperimentRecord("RecordedFlow-1", "alice", package, ["env_one", "env_two"], False, initial)


def _task(task_id: str, envoy: str) -> ChainTaskRecord:
    return ChainTaskRecord(task_id, envoy, "work", dpb.ChainTask(task=task_id), b"", {})


def _later(seconds: float, action) -> threading.Timer:
    timer = threading.Timer(seconds, action)
    timer.start()
    return timer


def test_the_name_is_the_flow_class(record: ExperimentRecord) -> None:
    assert record.name == "RecordedFlow"
    assert record.status == "queued" and record.finished is None


def test_watch_replays_then_follows_until_finished(record: ExperimentRecord) -> None:
    record.say("queued")
    record.line("hello", participant="env_one", stderr=True)

    def finish() -> None:
        record.say("running")
        record.emit(dpb.ExperimentEvent(finished=dpb.Finished(ok=False, error="boom")))
        record.say("after the end")

    timer = _later(0.05, finish)
    events = [e for e in record.watch() if not (e.WhichOneof("kind") == "status" and not e.status)]
    timer.join()
    assert [e.WhichOneof("kind") for e in events] == ["status", "output", "status", "finished"]
    assert events[1].output == dpb.OutputLine(participant="env_one", stderr=True, text="hello")
    assert record.finished == dpb.Finished(ok=False, error="boom")
    assert [e.status for e in events if e.status] == ["queued", "running"]
    assert len(list(record.watch())) == 4  # a later watcher gets the same events up to the end


def test_watch_sends_heartbeats_while_nothing_happens(
    record: ExperimentRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(experiment_module, "HEARTBEAT_SECONDS", 0.02)
    watcher = record.watch()
    began = time.monotonic()
    beat = next(watcher)
    assert beat == dpb.ExperimentEvent(status="") and beat.WhichOneof("kind") == "status"
    assert time.monotonic() - began < 1.0
    record.emit(dpb.ExperimentEvent(finished=dpb.Finished(ok=True)))
    rest = list(watcher)
    assert rest[-1].finished.ok


def test_wait_until_returns_once_ready(record: ExperimentRecord) -> None:
    ready = threading.Event()

    def decide() -> None:
        with record.changed:
            ready.set()
            record.changed.notify_all()

    timer = _later(0.05, decide)
    began = time.monotonic()
    record.wait_until(ready.is_set, "while testing", timeout=10)
    timer.join()
    assert time.monotonic() - began < 2.0


def test_wait_until_fails_after_its_timeout(record: ExperimentRecord) -> None:
    began = time.monotonic()
    with pytest.raises(ExperimentFailed, match="experiment RecordedFlow-1: no answer within 0 s while x"):
        record.wait_until(lambda: False, "while x", timeout=0.1)
    assert 0.1 <= time.monotonic() - began < 1.0


def test_wait_until_fails_when_an_envoy_of_the_experiment_is_lost(record: ExperimentRecord) -> None:
    record.status = "reviewing"
    timer = _later(0.05, lambda: record.envoy_lost("env_two", 12.4))
    with pytest.raises(ExperimentFailed) as excinfo:
        record.wait_until(lambda: False, "while the envoys reviewed it", timeout=10)
    timer.join()
    assert str(excinfo.value) == (
        "envoy env_two went offline (no health report for 12 s) while the envoys reviewed it"
    )


def test_envoy_lost_fails_only_that_envoys_unfinished_tasks(record: ExperimentRecord) -> None:
    record.status = "running"
    record.tasks = {
        "work-1": _task("work-1", "env_one"),
        "work-2": _task("work-2", "env_two"),
        "work-3": _task("work-3", "env_two"),
    }
    record.tasks["work-3"].result = ReceivedState(dpb.StateHeader(), b"", {}, 0)
    record.envoy_lost("env_two", 3.0)
    assert record.lost == {"env_two": 3.0}
    assert record.tasks["work-1"].error is None and not record.tasks["work-1"].done
    assert (
        record.tasks["work-2"].error
        == "envoy env_two went offline (no health report for 3 s) during step work"
    )
    assert record.tasks["work-3"].error is None  # it had ended already


def test_envoy_lost_ignores_strangers_and_finished_experiments(record: ExperimentRecord) -> None:
    record.envoy_lost("env_three", 5.0)
    assert record.lost == {}
    record.emit(dpb.ExperimentEvent(finished=dpb.Finished(ok=True)))
    record.envoy_lost("env_one", 5.0)
    assert record.lost == {}
