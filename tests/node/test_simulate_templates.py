"""`fx simulate` on the shipped templates: 4 collaborators, 2 rounds, the real command in a subprocess."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from openfl_cli.tensors.snapshot import load_snapshot
from tests.conftest import run_fx
from tests.runners.helpers import ONE_THREAD

TEMPLATES = [
    pytest.param("numpy/digits", id="numpy-digits"),
    pytest.param("torch/mnist", id="torch-mnist", marks=pytest.mark.torch),
    pytest.param("keras/mnist", id="keras-mnist", marks=pytest.mark.keras),
]


@pytest.mark.parametrize("template", TEMPLATES)
def test_fx_simulate_runs_a_template(tmp_path: Path, template: str) -> None:
    if template.startswith("torch"):
        pytest.importorskip("torch")
    if template.startswith("keras"):
        pytest.importorskip("keras")
    workspace = tmp_path / "ws"
    run_fx(["workspace", "create", "--prefix", str(workspace), "--template", template], cwd=tmp_path)
    done = run_fx(
        ["simulate", "--collaborators", "4", "--rounds", "2", "--threads", "2"],
        cwd=workspace,
        env=ONE_THREAD,
        timeout=400,
    )
    assert re.search(r"simulated 4 collaborators x 2 rounds \(24 collaborator tasks\)", done.stdout), (
        done.stdout
    )
    assert re.search(r"^round 2/2: 4/4 collaborators done", done.stdout, re.MULTILINE), done.stdout
    table = done.stdout.split("collaborators done")[-1]
    assert re.search(r"^\s+2\s+\d\.\d{4}", table, re.MULTILINE), done.stdout  # the metrics table
    if template.endswith("mnist"):  # offline, the MNIST loaders say they use the bundled digits
        assert "handwritten digits" in done.stderr
    init = load_snapshot(workspace / "save/init.pbuf").tensors  # written by the simulator itself
    last = load_snapshot(workspace / "save/last.pbuf")
    assert last.round_number == 1 and set(last.tensors) == set(init)
    assert (workspace / "save/best.pbuf").is_file()
    assert (workspace / "logs/metrics.jsonl").stat().st_size > 0
