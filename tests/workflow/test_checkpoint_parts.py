"""The parts of checkpoint=True: what a snapshot keeps (never a private attribute), the content keys,
the datastore's location, the flow's graph, and the best / last helper read back with Metaflow."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from openfl_cli.errors import UsageError
from openfl_cli.workflow import Aggregator, Collaborator, FLSpec, LocalRuntime, aggregator, collaborator
from openfl_cli.workflow.metaflow_format import datastore_root, identity, mflog
from openfl_cli.workflow.snapshot import content_key

SECRET = "PRIVATE-7f3a9c"  # in every private attribute; must be in no file of the checkpoint
PUBLIC = "PUBLIC-41d2e8"  # in a public attribute: the scan below finds it, so it can find SECRET
METRICS = [0.5, 0.9, 0.7]  # the join's metric per round: round 1 is the best


class Secretive(FLSpec):
    @aggregator
    def start(self) -> None:
        self.collaborators = self.runtime.collaborators
        self._scratch = f"{SECRET}-underscore"  # a `_` name: never saved
        self.label = PUBLIC
        self.round = 0
        self.model = np.arange(4, dtype=np.float64)
        self.next(self.train, foreach="collaborators")

    @collaborator
    def train(self) -> None:
        self.score = float(self.shard.sum())
        self.model = self.model + self.shard[:4]
        print(f"trained on {self.input}")
        self.next(self.join)

    @aggregator
    def join(self, inputs: Any) -> None:
        self.model = np.mean([i.model for i in inputs], axis=0)
        self.metric = METRICS[self.round] + len(self.vault) * 0  # reads the aggregator's private one
        self.round += 1
        if self.round < len(METRICS):
            self.next(self.train, foreach="collaborators")
        else:
            self.next(self.end)

    @aggregator
    def end(self) -> None:
        print("done")


def secret_shard(index: int) -> dict[str, Any]:
    return {"shard": np.full(8, index + 1.0), "note": f"{SECRET}-collaborator-{index}"}


def run_secretive(where: Path, monkeypatch: pytest.MonkeyPatch, backend: str = "single_process") -> Secretive:
    monkeypatch.setenv("METAFLOW_DATASTORE_SYSROOT_LOCAL", str(where))
    monkeypatch.setenv("METAFLOW_USER", "fx-test")
    keeper = Aggregator(private_attributes_callable=lambda: {"vault": f"{SECRET}-aggregator"})
    sites = [Collaborator(f"site{i}", private_attributes_callable=secret_shard, index=i) for i in range(2)]
    flow = Secretive(checkpoint=True)
    flow.runtime = LocalRuntime(aggregator=keeper, collaborators=sites, backend=backend)
    flow.run()
    return flow


def client(script: str, store: Path) -> Any:
    environment = {**os.environ, "METAFLOW_USER": "fx-test", "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(store)}
    command = [sys.executable, "-c", script]
    done = subprocess.run(command, cwd=store, env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_no_private_attribute_reaches_the_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("metaflow")
    flow = run_secretive(tmp_path, monkeypatch)
    files = [path for path in (tmp_path / ".metaflow").rglob("*") if path.is_file()]
    found = [path for path in files if PUBLIC.encode() in path.read_bytes()]
    assert found, "the scan finds a public attribute's value"
    leaked = [str(path) for path in files if SECRET.encode() in path.read_bytes()]
    assert leaked == []
    seen = client(
        "import json\nfrom metaflow import Flow\nrun = Flow('Secretive').latest_run\n"
        "names = {s.id: sorted({a.id for t in s for a in t if not a.id.startswith('_')}) for s in run}\n"
        "print(json.dumps(names))",
        tmp_path,
    )
    assert seen["train"] == ["collaborators", "input", "label", "metric", "model", "round", "score"]
    assert seen["join"] == ["collaborators", "label", "metric", "model", "round"]
    assert flow.round == 3 and not hasattr(flow, "vault")


def test_best_and_last_come_from_the_join_tasks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("metaflow")
    run_secretive(tmp_path, monkeypatch)
    second = run_secretive(tmp_path, monkeypatch)  # the helper reads the latest run by default
    script = (
        "import json\nfrom openfl_cli.workflow import best_and_last\n"
        "picked = best_and_last('Secretive', 'metric')\n"
        "low = best_and_last(picked.run, 'metric', mode='min', step='join')\n"
        "print(json.dumps({'run': picked.run, 'best_round': picked.best_round,"
        " 'best_value': picked.best_value, 'best': picked.best.tolist(),"
        " 'last': picked.last.tolist(), 'rounds': picked.rounds,"
        " 'low_round': low.best_round, 'best_task': picked.best_task}))"
    )
    picked = client(script, tmp_path)
    assert picked["run"] == second.runtime.checkpoint.pathspec
    assert picked["rounds"] == 3 and picked["best_round"] == 1 and picked["best_value"] == 0.9
    assert picked["low_round"] == 0
    assert picked["last"] == second.model.tolist()
    # round 1's model: start's arange, plus each round the mean of the shards' first four (1 and 2)
    assert picked["best"] == (np.arange(4.0) + 1.5 * 2).tolist()
    assert picked["best_task"].startswith(picked["run"] + "/join/")


def test_best_and_last_names_a_missing_metric(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("metaflow")
    run_secretive(tmp_path, monkeypatch)
    script = (
        "import json\nfrom openfl_cli.errors import UsageError\n"
        "from openfl_cli.workflow import best_and_last\n"
        "try:\n    best_and_last('Secretive', 'accuracy')\nexcept UsageError as err:\n"
        "    print(json.dumps(str(err)))"
    )
    message = client(script, tmp_path)
    assert "has no attribute accuracy" in message and "metric" in message and "\n" not in message


def test_an_attribute_that_cannot_be_saved_is_named_and_the_flow_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Locked(FLSpec):
        @aggregator
        def start(self) -> None:
            self.lock = threading.Lock()
            self.value = 1
            self.next(self.end)

        @aggregator
        def end(self) -> None:
            pass

    monkeypatch.setenv("METAFLOW_DATASTORE_SYSROOT_LOCAL", str(tmp_path))
    flow = Locked(checkpoint=True)
    flow.runtime = LocalRuntime()
    flow.run()
    summary = flow.runtime.checkpoint
    assert summary is not None and summary.error is None and summary.tasks == 2
    assert set(summary.unsaved) == {"start.lock", "end.lock"}
    printed = capsys.readouterr().out
    assert "checkpoint: step start: attribute lock not saved (TypeError:" in printed


def test_an_unwritable_datastore_stops_the_run_before_it_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("METAFLOW_DATASTORE_SYSROOT_LOCAL", str(blocker))
    flow = Secretive(checkpoint=True)
    flow.runtime = LocalRuntime(collaborators=[Collaborator("a")])
    with pytest.raises(UsageError, match="checkpoint: cannot write the Metaflow datastore"):
        flow.run()


def test_checkpoint_is_off_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METAFLOW_DATASTORE_SYSROOT_LOCAL", str(tmp_path))
    sites = [Collaborator(f"site{i}", private_attributes_callable=secret_shard, index=i) for i in range(2)]
    keeper = Aggregator()
    keeper.private_attributes = {"vault": ""}
    flow = Secretive()
    flow.runtime = LocalRuntime(aggregator=keeper, collaborators=sites)
    flow.run()
    assert flow.runtime.checkpoint is None and not (tmp_path / ".metaflow").exists()


def test_the_datastore_is_where_metaflow_looks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("METAFLOW_DATASTORE_SYSROOT_LOCAL", raising=False)
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert datastore_root(deep) == deep.resolve() / ".metaflow"  # none yet: the working directory
    (tmp_path / ".metaflow").mkdir()
    assert datastore_root(deep) == tmp_path.resolve() / ".metaflow"  # the nearest above
    monkeypatch.setenv("METAFLOW_DATASTORE_SYSROOT_LOCAL", str(deep))
    assert datastore_root(tmp_path) == deep.resolve() / ".metaflow"


def test_the_identity_is_found_as_metaflow_finds_it(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("METAFLOW_PRODUCTION_TOKEN", "METAFLOW_USER", "SUDO_USER", "USERNAME", "USER"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("USER", "root")
    assert identity() is None  # Metaflow does not take root for a user either
    monkeypatch.setenv("USERNAME", "ana")
    assert identity() == "user:ana"
    monkeypatch.setenv("METAFLOW_USER", "bo")
    assert identity() == "user:bo"
    monkeypatch.setenv("METAFLOW_PRODUCTION_TOKEN", "t1")
    assert identity() == "production:t1"


def test_output_is_written_as_lines_the_metaflow_client_parses() -> None:
    parser = pytest.importorskip("metaflow.mflog.mflog")
    written = mflog("first\nsecond\n", 1_700_000_000_123)
    lines = [parser.parse(line) for line in written.splitlines()]
    assert [line.msg for line in lines] == [b"first", b"second"]
    assert mflog("", 0) == b""


def test_equal_values_get_equal_content_keys() -> None:
    first = {"w": np.arange(10.0), "n": 3}
    assert content_key(first) == content_key(copy.deepcopy(first))
    assert content_key(first) != content_key({"w": np.arange(10.0) + 1e-12, "n": 3})


def test_equal_torch_models_get_equal_content_keys() -> None:
    torch = pytest.importorskip("torch")
    model = torch.nn.Linear(6, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    twin = copy.deepcopy({"model": model, "optimizer": optimizer})
    assert content_key(model) == content_key(twin["model"])  # PyTorch's own pickles differ here
    assert content_key(optimizer) == content_key(twin["optimizer"])
    with torch.no_grad():
        twin["model"].weight[0, 0] += 1.0
    assert content_key(model) != content_key(twin["model"])
    twin = copy.deepcopy(model).eval()
    assert content_key(model) != content_key(twin)  # a module's mode is part of it


def test_the_graph_of_the_seed_flow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    from tests.workflow.seed_flows import FederatedFlow

    graph = FederatedFlow().graph()
    assert list(graph.steps) == [
        "start",
        "aggregated_model_validation",
        "train",
        "local_model_validation",
        "join",
        "end",
    ]
    placements = {name: node.placement for name, node in graph.steps.items()}
    assert placements["train"] == "collaborator" and placements["join"] == "aggregator"
    assert [name for name, node in graph.steps.items() if node.join] == ["join"]
    edges = {(t.source, t.target): t for t in graph.transitions}
    assert edges["start", "aggregated_model_validation"].foreach
    assert edges["start", "aggregated_model_validation"].foreach_attribute == "collaborators"
    back = edges["join", "aggregated_model_validation"]
    assert back.loop and back.foreach
    assert not edges["join", "end"].loop and not edges["train", "local_model_validation"].foreach
    dot = graph.to_dot()
    assert '"start" -> "aggregated_model_validation" [label="foreach collaborators", penwidth=2];' in dot
    assert "style=dashed" in dot and "peripheries=2" in dot and "@collaborator" in dot
    info = graph.metaflow_info()
    assert info["steps"]["join"]["type"] == "join" and info["steps"]["start"]["type"] == "split-foreach"
    assert info["steps"]["join"]["next"] == ["aggregated_model_validation", "end"]

    # without Graphviz: a clear message, and the DOT text
    monkeypatch.setattr("openfl_cli.workflow.flow_graph.shutil.which", lambda name: None)
    written = FederatedFlow().graph(tmp_path / "flow.svg")
    assert graph.write(tmp_path / "flow.svg") == tmp_path / "flow.dot"
    assert (tmp_path / "flow.dot").read_text() == dot and not (tmp_path / "flow.svg").exists()
    assert written.steps == graph.steps
    with pytest.raises(UsageError, match=r"written as \.dot, \.svg, \.png or \.pdf"):
        graph.write(tmp_path / "flow.jpg")


def test_the_seed_flow_graph_is_drawn_with_graphviz(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    import shutil
    import xml.etree.ElementTree as ElementTree

    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed")
    from tests.workflow.seed_flows import FederatedFlow

    FederatedFlow().graph(tmp_path / "flow.svg")
    svg = ElementTree.parse(tmp_path / "flow.svg").getroot()
    assert svg.tag.endswith("svg")
    text = " ".join(node.text or "" for node in svg.iter())
    assert "local_model_validation" in text and "@collaborator" in text and "foreach collaborators" in text


class Failing(FLSpec):
    @aggregator
    def start(self) -> None:
        self.collaborators = self.runtime.collaborators
        self.next(self.train, foreach="collaborators")

    @collaborator
    def train(self) -> None:
        self.seen = self.input
        print(f"training on {self.input}")
        if self.input == "site1":
            raise ValueError("the shard of site1 is damaged")
        self.next(self.join)

    @aggregator
    def join(self, inputs: Any) -> None:
        self.next(self.end)

    @aggregator
    def end(self) -> None:
        pass


@pytest.mark.parametrize("backend", ["single_process", pytest.param("ray", marks=pytest.mark.ray)])
def test_a_failed_task_is_saved_with_its_traceback(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("metaflow")
    if backend == "ray":
        pytest.importorskip("ray")
    monkeypatch.setenv("METAFLOW_DATASTORE_SYSROOT_LOCAL", str(tmp_path))
    monkeypatch.setenv("METAFLOW_USER", "fx-test")
    flow = Failing(checkpoint=True)
    flow.runtime = LocalRuntime(collaborators=[Collaborator("site0"), Collaborator("site1")], backend=backend)
    with pytest.raises(ValueError, match="the shard of site1 is damaged"):
        flow.run()
    seen = client(
        "import json\nfrom metaflow import Flow\nrun = Flow('Failing').latest_run\n"
        "tasks = {t.data.seen: t for t in run['train']}\n"
        "bad = tasks['site1']\n"
        "print(json.dumps({'successful': run.successful, 'ok': tasks['site0'].successful,"
        " 'bad_ok': bad.successful, 'bad_finished': bad.finished, 'stdout': bad.stdout,"
        " 'stderr': bad.stderr, 'exception': bad.exception, 'steps': [s.id for s in run]}))",
        tmp_path,
    )
    assert seen["steps"] == ["train", "start"] and seen["successful"] is False
    assert seen["ok"] is True and seen["bad_ok"] is False and seen["bad_finished"] is False
    assert seen["stdout"] == "training on site1\n"
    assert "Traceback" in seen["stderr"] and "ValueError: the shard of site1 is damaged" in seen["stderr"]
    assert seen["exception"] == "ValueError: the shard of site1 is damaged"
