"""Real federations (`fx` processes over mutual TLS on 127.0.0.1, numpy/digits) when something breaks:
a collaborator's task raises, the initial model does not fit, a collaborator is removed mid-round, the
aggregator cannot write its outputs. Nothing waits silently: every process ends, saying why."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_fx
from tests.e2e.federation_run import Federation
from tests.e2e.pki_flow import FederationDirs, certify_federation

pytestmark = pytest.mark.e2e

FAST = {
    "aggregator": {"settings": {"rounds_to_train": 2}},
    "network": {"settings": {"client_reconnect_interval": 0.3}},
}
CUTOFF = {
    "template": "openfl_cli.federation.straggler.CutoffTimePolicy",
    "settings": {"straggler_cutoff_time": 120, "minimum_reporting": 1},
}


@pytest.fixture(scope="module")
def certified(tmp_path_factory: pytest.TempPathFactory) -> FederationDirs:
    return certify_federation(tmp_path_factory.mktemp("certified"), ["one", "two"])


@pytest.fixture
def make_federation(certified: FederationDirs, tmp_path: Path) -> Iterator:
    made: list[Federation] = []

    def make(changes: dict[str, object] | None = None) -> Federation:
        federation = Federation(certified, tmp_path / "run", {**FAST, **(changes or {})}, ["one", "two"])
        made.append(federation)
        return federation

    yield make
    for federation in made:
        federation.close()


def break_training(workspace: Path, message: str) -> None:
    """Make the collaborator's own code raise in its training pass (the plan, and its hash, unchanged)."""
    runner = workspace / "src" / "taskrunner.py"
    source = runner.read_text()
    marker = "    def train_epoch(self, round_number: int, **kwargs: Any) -> dict[str, float]:\n"
    assert marker in source
    runner.write_text(source.replace(marker, f"{marker}        raise OSError({message!r})\n"))


def test_a_failing_task_under_wait_for_all_stops_everyone_naming_the_collaborator(make_federation) -> None:
    federation: Federation = make_federation()
    break_training(federation.collaborators["two"], "disk full on two")
    started = time.monotonic()
    aggregator = federation.start_aggregator()
    one, two = federation.start_collaborator("one"), federation.start_collaborator("two")
    codes = [federation.wait(process, 60) for process in (aggregator, one, two)]
    assert codes == [1, 1, 1], federation.all_logs()
    assert time.monotonic() - started < 45
    stopped = "two's task failed (task 'train' (train_task) failed: OSError: disk full on two)"
    assert stopped in federation.log("aggregator.log"), federation.all_logs()
    assert "WaitForAllPolicy cannot close the round without it" in federation.log("aggregator.log")
    assert "the aggregator stopped the experiment: round 1:" in federation.log("one.log")
    assert "disk full on two (the aggregator is told)" in federation.log("two.log")
    assert "Traceback" not in federation.all_logs()


def test_a_policy_that_needs_one_report_finishes_without_the_failing_collaborator(make_federation) -> None:
    federation: Federation = make_federation({"straggler_handling_policy": CUTOFF})
    break_training(federation.collaborators["two"], "driver crashed")
    aggregator = federation.start_aggregator()
    one, two = federation.start_collaborator("one"), federation.start_collaborator("two")
    codes = [federation.wait(process, 90) for process in (aggregator, one, two)]
    assert codes == [0, 0, 0], federation.all_logs()
    assert "experiment complete: 2 rounds" in federation.log("aggregator.log")
    assert federation.log("aggregator.log").count("train failed on two: ") == 2  # once per round


def test_an_initial_model_that_does_not_fit_stops_before_any_training(make_federation) -> None:
    from openfl_cli.tensors.snapshot import load_snapshot, save_snapshot

    federation: Federation = make_federation()
    init = federation.aggregator / "save" / "init.pbuf"
    tensors = load_snapshot(init).tensors
    dropped = sorted(tensors)[0]
    save_snapshot(init, {name: value for name, value in tensors.items() if name != dropped}, round_number=0)
    aggregator = federation.start_aggregator()
    one, two = federation.start_collaborator("one"), federation.start_collaborator("two")
    codes = [federation.wait(process, 60) for process in (aggregator, one, two)]
    assert codes == [1, 1, 1], federation.all_logs()
    log = federation.log("aggregator.log")
    assert "does not fit" in log and f"'{dropped}'" in log and "fx plan initialize" in log, log
    assert "round 1/2 " not in federation.log("one.log") + federation.log("two.log")  # no task ran


def test_a_collaborator_removed_mid_round_leaves_it_at_once(make_federation) -> None:
    federation: Federation = make_federation()
    aggregator = federation.start_aggregator()
    one, two = federation.start_collaborator("one"), federation.start_collaborator("two")
    federation.wait_for("two.log", r"global model received")
    federation.kill(two, signal.SIGSTOP)  # alive and silent, as a machine that hangs
    removed = run_fx(["collaborator", "remove", "-n", "two"], cwd=federation.aggregator)
    assert "Removed two" in removed.stdout
    removed_at = time.monotonic()
    federation.wait_for("aggregator.log", r"two was removed from the federation", timeout=10)
    assert federation.wait(aggregator, 60) == 0, federation.all_logs()
    assert federation.wait(one, 30) == 0, federation.all_logs()
    assert time.monotonic() - removed_at < 40
    assert "experiment complete: 2 rounds" in federation.log("aggregator.log")
    federation.kill(two)


def test_a_fatal_write_error_stops_the_aggregator_and_tells_the_collaborators(make_federation) -> None:
    federation: Federation = make_federation({"aggregator": {"settings": {"rounds_to_train": 1}}})
    (federation.aggregator / "save" / "last.pbuf").mkdir(parents=True)  # the last model cannot be written
    aggregator = federation.start_aggregator()
    one, two = federation.start_collaborator("one"), federation.start_collaborator("two")
    federation.wait_for("aggregator.log", r"last\.pbuf")
    failed_at = time.monotonic()
    assert federation.wait(aggregator, 30) == 1, federation.all_logs()
    assert time.monotonic() - failed_at < 8, "the aggregator waited on the long polls"
    codes = [federation.wait(one, 30), federation.wait(two, 30)]
    assert codes == [1, 1], federation.all_logs()
    assert "the aggregator stopped the experiment: the aggregator failed:" in federation.log("one.log")
