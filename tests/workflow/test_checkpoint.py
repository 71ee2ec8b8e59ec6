"""checkpoint=True, read with the real Metaflow client: the contract test of the on-disk format.

The seed's flow runs with checkpoint=True on both backends, then a fresh Python process walks the run
with Metaflow's client exactly as the seed's "Debugging with the Metaflow Client" session does (a fresh
process: Metaflow reads its configuration, and finds its datastore, once per process).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("metaflow")

from tests.workflow.test_seed_flow import NAMES, runtime_with_callable  # noqa: E402

pytestmark = pytest.mark.torch
ROOT = Path(__file__).resolve().parents[2]

# the seed's client session, as written, with the values it shows collected for the test
CLIENT_SESSION = """
import json, sys
import torch
from metaflow import Metaflow, Flow, Step, Task

m = Metaflow()
flows = [str(f) for f in list(m)]
flow_name = 'FederatedFlow'
flow = Flow(flow_name)
runs = [r.pathspec for r in list(flow)]
run = Flow(flow_name).latest_run
steps = [s.id for s in list(run)]
step = Step(f'{run.pathspec}/aggregated_model_validation')
portland = []
for task in step:
    if task.data.input == 'Portland':
        portland.append({
            "id": task.id,
            "data": sorted(a.id for a in task if not a.id.startswith('_')),
            "model": type(task.data.model).__name__,
            "stdout": task.stdout,
            "stderr": task.stderr,
            "participant": task.metadata_dict.get("participant"),
        })
inputs = sorted(task.data.input for task in Step(f'{run.pathspec}/train'))
joins = list(Step(f'{run.pathspec}/join'))
last = Task(joins[0].pathspec)
torch.save(last.data.model.state_dict(), sys.argv[1])
every_task = [t for s in run for t in s]
print(json.dumps({
    "flows": flows,
    "runs": runs,
    "latest": run.pathspec,
    "steps": steps,
    "portland": portland,
    "train_inputs": inputs,
    "joins": [t.id for t in joins],
    "join_rounds": [t.data.current_round for t in joins],
    "last_accuracy": last.data.local_model_accuracy,
    "artifacts": sorted({a.id for t in every_task for a in t}),
    "task_ids": [t.id for t in every_task],
    "successful": run.successful,
    "children_of_join": sorted(s.id for s in Step(f'{run.pathspec}/join').child_steps),
}))
"""


def read_with_client(script: str, where: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    import os

    environment = {**os.environ, "METAFLOW_USER": "fx-test"}
    environment.pop("METAFLOW_DATASTORE_SYSROOT_LOCAL", None)
    environment.update(env or {})
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=where,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_seed_flow(backend: str, where: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from tests.workflow.seed_flows import FederatedFlow

    monkeypatch.chdir(where)
    monkeypatch.setenv("METAFLOW_USER", "fx-test")
    torch.manual_seed(0)
    flow = FederatedFlow(checkpoint=True)
    flow.runtime = runtime_with_callable(backend)
    flow.run()
    return flow


def check_the_seed_session(session: dict[str, Any], flow: Any, state_file: Path, runs: int) -> None:
    assert "Flow('FederatedFlow')" in session["flows"]
    assert len(session["runs"]) == runs and session["runs"][0] == session["latest"]
    assert session["latest"] == flow.runtime.checkpoint.pathspec
    # the steps, end first, as the seed lists them
    assert session["steps"] == [
        "end",
        "join",
        "local_model_validation",
        "train",
        "aggregated_model_validation",
        "start",
    ]
    portland = session["portland"]
    assert len(portland) == 3  # one task per round
    for task in portland:
        assert task["participant"] == "Portland" and task["model"] == "Net"
        assert "Performing aggregated model validation for collaborator Portland\n" in task["stdout"]
        assert task["stderr"] == ""
        assert {"model", "optimizer", "input", "agg_validation_score", "rounds"} <= set(task["data"])
    assert session["train_inputs"] == sorted(NAMES * 3)
    # one join per round, newest first, and the newest holds the flow's final model
    assert session["join_rounds"] == [3, 2, 1]
    assert [int(i) for i in session["joins"]] == sorted((int(i) for i in session["joins"]), reverse=True)
    assert session["last_accuracy"] == flow.local_model_accuracy
    saved = torch.load(state_file)
    for name, tensor in flow.model.state_dict().items():
        assert torch.equal(saved[name], tensor), name
    # task ids are unique across participants; private attributes are nowhere
    assert len(set(session["task_ids"])) == len(session["task_ids"]) == 1 + 3 * (1 + 3 * len(NAMES)) + 1
    assert "train_loader" not in session["artifacts"] and "test_loader" not in session["artifacts"]
    assert session["successful"] is True
    assert session["children_of_join"] == ["aggregated_model_validation", "end"]


def test_the_seed_session_reads_a_single_process_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("METAFLOW_DATASTORE_SYSROOT_LOCAL", raising=False)
    first = run_seed_flow("single_process", tmp_path, monkeypatch)
    flow = run_seed_flow("single_process", tmp_path, monkeypatch)  # a second run: the flow lists both
    printed = capsys.readouterr().out
    root = (tmp_path / ".metaflow").resolve()
    assert printed.count("checkpoint: saving run FederatedFlow/") == 2
    assert f"to {root}" in printed
    assert first.runtime.checkpoint.pathspec != flow.runtime.checkpoint.pathspec
    # the client finds .metaflow from a folder below the one the flow ran in, as Metaflow does
    below = tmp_path / "notebooks"
    below.mkdir()
    session = read_with_client(CLIENT_SESSION, below, str(tmp_path / "last.pt"))
    check_the_seed_session(session, flow, tmp_path / "last.pt", runs=2)


@pytest.mark.ray
def test_the_seed_session_reads_a_ray_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("ray")
    store = tmp_path / "store"
    monkeypatch.setenv("METAFLOW_DATASTORE_SYSROOT_LOCAL", str(store))
    flow = run_seed_flow("ray", tmp_path, monkeypatch)
    assert flow.runtime.checkpoint.root == (store / ".metaflow").resolve()
    environment = {"METAFLOW_DATASTORE_SYSROOT_LOCAL": str(store)}
    session = read_with_client(CLIENT_SESSION, tmp_path, str(tmp_path / "last.pt"), env=environment)
    check_the_seed_session(session, flow, tmp_path / "last.pt", runs=1)
