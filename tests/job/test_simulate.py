"""`simulator_run`: its argument checks, and how it hands the exported job to the core simulator (the
simulator itself is stubbed here: the client runner's own tests run scripts end to end)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import openfl_cli.node.simulator as simulator
from openfl_cli.errors import FxError, UsageError
from openfl_cli.job.simulate import with_devices
from tests.job.conftest import make_job


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Stub the simulator's run: record what it was given and where it ran."""
    seen: list[dict[str, Any]] = []

    def run(spec: Any, builder: Any, *, threads: int = 1, **_: Any) -> str:
        seen.append({"spec": spec, "builder": builder, "threads": threads, "cwd": Path.cwd()})
        if spec.aggregator.rounds_to_train == 9:
            raise FxError("collaborator site-1: RuntimeError: the script failed")
        return "result"

    monkeypatch.setattr(simulator, "run_simulation", run)
    return seen


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"n_clients": 0}, "n_clients must be an integer >= 1"),
        ({"n_clients": -2}, "n_clients must be an integer >= 1"),
        ({"threads": 0}, "threads must be an integer >= 1"),
        ({"gpu": "zero"}, "device ids like '0'"),
        ({"gpu": "0,0"}, "distinct device ids"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_written(
    script: Path, tmp_path: Path, arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        make_job(script).simulator_run(tmp_path / "work", **arguments)
    assert not (tmp_path / "work").exists()


def test_a_gpu_is_refused_without_cuda(script: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UsageError, match="sees no CUDA device"):
        make_job(script).simulator_run(tmp_path / "work", gpu="0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(UsageError, match="no CUDA device 1; this machine has 1"):
        make_job(script).simulator_run(tmp_path / "work", gpu="0,1")
    assert not (tmp_path / "work").exists()


def test_the_exported_job_runs_in_its_workspace_whatever_the_callers_folder(
    script: Path, tmp_path: Path, calls: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert make_job(script, n_clients=3).simulator_run("work", n_clients=3) == "result"
    root = (elsewhere / "work" / "demo").resolve()
    (call,) = calls
    assert call["cwd"] == root and Path.cwd() == elsewhere
    assert call["threads"] == 2  # min(clients, 2)
    spec = call["spec"]
    assert spec.workspace == root and spec.collaborators == ("site-1", "site-2", "site-3")
    assert spec.aggregator.outputs.persist_checkpoint is False  # as the simulator runs plans
    assert (root / "plan" / "plan.yaml").is_file() and (root / "src" / "train.py").is_file()
    make_job(script, n_clients=1).simulator_run("work", n_clients=1, threads=4)
    assert calls[1]["threads"] == 4


def test_a_failing_run_raises_naming_the_site_and_restores_the_folder(
    script: Path, tmp_path: Path, calls: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FxError, match="collaborator site-1: RuntimeError: the script failed"):
        make_job(script, rounds=9).simulator_run(tmp_path / "work")
    assert Path.cwd() == tmp_path


def test_gpus_are_spread_over_the_sites_for_the_run_only(
    script: Path, tmp_path: Path, calls: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    make_job(script, n_clients=3).simulator_run(tmp_path, n_clients=3, gpu="1,0")
    sites = calls[0]["spec"].task_runner.settings["sites"]
    assert sites == {
        "site-1": {"device": "cuda:1"},
        "site-2": {"device": "cuda:0"},
        "site-3": {"device": "cuda:1"},
    }
    assert "device" not in (tmp_path / "demo" / "plan" / "plan.yaml").read_text()


def test_devices_join_a_sites_own_settings(script: Path, tmp_path: Path) -> None:
    from openfl_cli.job import ScriptRunner
    from openfl_cli.job.content import export_content

    other = tmp_path / "code" / "b.py"
    other.write_text("")
    job = make_job(script)
    job.to(ScriptRunner(str(other)), "site-2")
    spec = with_devices(export_content(job, tmp_path / "demo", n_clients=2).spec, [0])
    assert spec.task_runner.settings["sites"]["site-2"]["script"] == "src/b.py"
    assert spec.task_runner.settings["sites"]["site-2"]["device"] == "cuda:0"
    assert os.fspath(spec.workspace) == os.fspath(tmp_path / "demo")
