"""The in-process simulator on the numpy/digits template: real outputs, bounded runners, clear errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from openfl_cli.errors import FxError, UsageError
from openfl_cli.federation.specs import ComponentSpec
from openfl_cli.node.simulator import run_simulation, simulate, simulation_spec
from openfl_cli.plan import Plan
from openfl_cli.tensors.snapshot import load_snapshot
from openfl_cli.workspace.create import create_workspace
from tests.conftest import run_fx


class Silent:
    interval = 5.0

    def __init__(self) -> None:
        self.rounds: list[int] = []

    def round_closed(self, summary: Any) -> None:
        self.rounds.append(summary.number)

    def waiting(self, status: Any) -> None:
        pass


@pytest.fixture(autouse=True)
def _no_workspace_src_left() -> Iterator[None]:
    yield
    for name in [n for n in sys.modules if n == "src" or n.startswith("src.")]:
        del sys.modules[name]


@pytest.fixture
def digits(tmp_path: Path) -> Path:
    return create_workspace(tmp_path / "digits", "numpy/digits")


def run(workspace: Path, **kwargs: Any):
    kwargs.setdefault("reporter", Silent())
    kwargs.setdefault("show_progress", False)
    return simulate(
        workspace / "plan/plan.yaml", workspace / "plan/cols.yaml", workspace / "plan/data.yaml", **kwargs
    )


def test_a_simulation_writes_the_real_outputs(digits: Path) -> None:
    reporter = Silent()
    result = run(digits, collaborators=4, rounds=2, reporter=reporter)
    assert result.finished and result.rounds_done == 2 and result.collaborators == 4
    assert result.collaborator_tasks == 4 * 3 * 2  # three tasks per collaborator and round
    assert reporter.rounds == [0, 1]
    for name in ("init", "best", "last"):
        assert (digits / "save" / f"{name}.pbuf").is_file()
    assert load_snapshot(digits / "save/last.pbuf").round_number == 1  # rounds count from 0 on disk
    records = [json.loads(line) for line in (digits / "logs/metrics.jsonl").read_text().splitlines()]
    aggregated = {(r["round"], r["task"]) for r in records if r["node"] == "aggregator"}
    assert (1, "aggregated_model_validation") in aggregated and (1, "train") in aggregated
    senders = {r["node"] for r in records if r["node"] != "aggregator"}
    assert senders == {f"collaborator{i}" for i in range(1, 5)}
    assert list((digits / "logs").rglob("events.out.tfevents.*"))
    assert not (digits / "local_state/tensor.db").exists()  # a simulation is rerun, not resumed


def test_the_model_learns_and_reruns_give_the_same_model(digits: Path) -> None:
    first = run(digits, collaborators=3, rounds=3)
    model = load_snapshot(first.last_state_path).tensors
    initial = load_snapshot(digits / "save/init.pbuf").tensors
    assert any(not np.array_equal(model[name], initial[name]) for name in initial)
    run(digits, collaborators=3, rounds=3)
    again = load_snapshot(first.last_state_path).tensors
    assert all(np.array_equal(model[name], again[name]) for name in model)


def test_threads_give_the_same_model_up_to_summation_order(digits: Path) -> None:
    run(digits, collaborators=6, rounds=2, threads=1)
    one = load_snapshot(digits / "save/last.pbuf").tensors
    run(digits, collaborators=6, rounds=2, threads=3)
    three = load_snapshot(digits / "save/last.pbuf").tensors
    for name in one:
        np.testing.assert_allclose(three[name], one[name], rtol=1e-6, atol=1e-7)


class CountingBuilder:
    """The plan's builder, counting the task runners it builds."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.runners = 0

    def build(
        self,
        component: ComponentSpec,
        injected: Mapping[str, Any] | None = None,
        optional_injected: Mapping[str, Any] | None = None,
    ) -> Any:
        if component.key == ("task_runner",):
            self.runners += 1
        return self.plan.build(component, injected, optional_injected)

    def import_callable(self, dotted: str, key: tuple[str, ...]) -> Any:
        return self.plan.import_callable(dotted, key)


@pytest.mark.parametrize("threads", [1, 2])
def test_at_most_one_runner_per_thread_is_built(digits: Path, threads: int) -> None:
    run_fx(["plan", "initialize", "-a", "127.0.0.1"], cwd=digits)  # no reference runner needed then
    plan = Plan.load(digits / "plan/plan.yaml", None, None)
    builder = CountingBuilder(plan)
    spec = simulation_spec(plan.experiment(), collaborators=12, rounds=2)
    result = run_simulation(spec, builder, threads=threads, reporter=Silent(), show_progress=False)
    assert result.finished and result.collaborator_tasks == 12 * 3 * 2
    assert 1 <= builder.runners <= threads


def test_the_plans_own_collaborators_by_default(digits: Path) -> None:
    (digits / "plan/cols.yaml").write_text("collaborators: [north, south]\n")
    (digits / "plan/data.yaml").write_text("north: '1'\nsouth: '2'\n")
    result = run(digits, rounds=1)
    assert result.collaborators == 2
    nodes = {json.loads(line)["node"] for line in (digits / "logs/metrics.jsonl").read_text().splitlines()}
    assert {"north", "south"} <= nodes


def test_bad_input_gets_one_line_errors(digits: Path) -> None:
    with pytest.raises(UsageError, match="give --collaborators N"):
        run(digits)  # the template's cols.yaml lists nobody
    (digits / "plan/cols.yaml").write_text("collaborators: [north, south]\n")
    with pytest.raises(UsageError, match=r"plan/data.yaml: no data path for north, south"):
        run(digits)
    with pytest.raises(UsageError, match="--threads"):
        run(digits, collaborators=2, threads=0)
    with pytest.raises(UsageError, match="--rounds"):
        run(digits, collaborators=2, rounds=0)
    done = run_fx(["simulate", "--collaborators", "0"], cwd=digits, check=False)
    assert done.returncode == 2 and "--collaborators" in done.stderr


FAILING_RUNNER = """
from src.taskrunner import DigitsSoftmaxRunner


class Flaky(DigitsSoftmaxRunner):
    def train_epoch(self, round_number, **kwargs):
        if self.data_loader.shard == 2:  # shard 3 (counted from 0)
            raise RuntimeError("disk on fire")
        return super().train_epoch(round_number, **kwargs)
"""


def test_a_failing_task_stops_the_simulation_with_its_reason(digits: Path) -> None:
    (digits / "src/flaky.py").write_text(FAILING_RUNNER)
    plan_file = digits / "plan/plan.yaml"
    plan_file.write_text(
        plan_file.read_text().replace("src.taskrunner.DigitsSoftmaxRunner", "src.flaky.Flaky")
    )
    with pytest.raises(
        FxError,
        match=r"^round 1: collaborator3's task failed \(task .train. \(train_task\) failed: RuntimeError:"
        r" disk on fire\), and WaitForAllPolicy cannot close the round without it$",
    ) as raised:
        run(digits, collaborators=4, rounds=2, threads=2)
    assert "\n" not in str(raised.value)
    assert not (digits / "save/last.pbuf").exists()  # no round completed


def test_the_package_level_function_runs_a_simulation(digits: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import openfl_cli

    monkeypatch.chdir(digits)
    result = openfl_cli.simulate(collaborators=2, rounds=1)
    assert result.finished and result.collaborator_tasks == 6
    assert result.last_state_path == digits / "save/last.pbuf"


def test_an_aggregator_that_cannot_write_its_outputs_ends_the_simulation(digits: Path) -> None:
    (digits / "save/last.pbuf").mkdir(parents=True)  # a folder where the snapshot must go
    with pytest.raises(Exception, match=r"last\.pbuf"):
        run(digits, collaborators=3, rounds=3)


def test_a_simulation_is_refused_while_an_aggregator_holds_the_workspace(digits: Path) -> None:
    from openfl_cli.errors import UsageError
    from openfl_cli.node.aggregator import workspace_lock

    lock = workspace_lock(digits)
    try:
        with pytest.raises(UsageError, match=r"another aggregator \(pid \d+, started .*\) runs in this"):
            run(digits, collaborators=2, rounds=1)
    finally:
        lock.release()
    assert not (digits / "save/last.pbuf").exists()
