"""`fx quickstart`: the whole documented flow with real processes over mutual TLS, per template."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import FX, fx_env, run_fx

pytestmark = pytest.mark.e2e


def _aggregated(metrics_file: Path, task: str, metric: str) -> dict[int, float]:
    values = {}
    for line in metrics_file.read_text().splitlines():
        record = json.loads(line)
        if record["node"] == "aggregator" and record["task"] == task and record["metric"] == metric:
            values[int(record["round"])] = float(record["value"])
    return values


def _quickstart(tmp_path: Path, template: str, rounds: int, env: dict[str, str] | None = None) -> Path:
    prefix = tmp_path / "qs"
    proc = run_fx(
        [
            "quickstart",
            "--template",
            template,
            "--collaborators",
            "2",
            "--rounds",
            str(rounds),
            "--prefix",
            str(prefix),
        ],
        tmp_path,
        env=env,
        timeout=600,
    )
    assert "done in" in proc.stdout, proc.stdout
    assert "round" in proc.stdout  # the metrics table
    aggregator = prefix / "aggregator" / "federation"
    for snapshot in ("init", "best", "last"):
        assert (aggregator / "save" / f"{snapshot}.pbuf").is_file(), f"{snapshot}.pbuf missing"
    for name in ("collaborator1", "collaborator2"):
        workspace = prefix / name / "federation"
        assert (workspace / "cert" / "client" / f"col_{name}.crt").is_file()
        assert not list((workspace / "save").glob("*.pbuf")), (
            "a collaborator must not hold the aggregator's model"
        )
    return aggregator


def _rises(aggregator: Path) -> None:
    """Validation accuracy of the aggregated model rises: the last validated model beats the initial one."""
    accuracy = _aggregated(aggregator / "logs" / "metrics.jsonl", "aggregated_model_validation", "acc")
    rounds = sorted(accuracy)
    assert len(rounds) >= 2, accuracy
    assert accuracy[rounds[-1]] > accuracy[rounds[0]], accuracy


def test_quickstart_numpy_digits(tmp_path: Path) -> None:
    aggregator = _quickstart(tmp_path, "numpy/digits", rounds=3)
    _rises(aggregator)
    native = np.load(aggregator / "save" / "model.npz", allow_pickle=False)
    from openfl_cli.tensors.snapshot import load_snapshot

    snapshot = load_snapshot(aggregator / "save" / "best.pbuf").tensors
    for name, array in snapshot.items():
        if not name.startswith("__opt__"):
            np.testing.assert_array_equal(native[name], array)


def test_quickstart_refuses_a_non_empty_prefix(tmp_path: Path) -> None:
    prefix = tmp_path / "taken"
    prefix.mkdir()
    (prefix / "file").write_text("x")
    proc = run_fx(
        ["quickstart", "--template", "numpy/digits", "--prefix", str(prefix)], tmp_path, check=False
    )
    assert proc.returncode == 2
    assert "not empty" in proc.stderr and str(prefix) in proc.stderr


def _predictions_from_snapshot(aggregator: Path, inputs: np.ndarray) -> tuple[object, np.ndarray]:
    """Load best.pbuf through get_model (the documented Python API) and predict with the runner's model."""
    import os

    cwd = os.getcwd()
    os.chdir(aggregator)
    try:
        from openfl_cli import get_model

        runner = get_model("plan/plan.yaml", "plan/cols.yaml", "plan/data.yaml", "save/best.pbuf")
    finally:
        os.chdir(cwd)
    return runner, inputs


@pytest.mark.torch
def test_quickstart_torch_mnist(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    aggregator = _quickstart(tmp_path, "torch/mnist", rounds=2)
    _rises(aggregator)
    native = torch.load(aggregator / "save" / "model.pt", weights_only=True)
    runner, inputs = _predictions_from_snapshot(aggregator, np.random.default_rng(0).random((8, 1, 28, 28)))
    model = runner.build_model()
    model.load_state_dict(native["model_state_dict"])
    model.eval()
    runner.model.eval()
    batch = torch.as_tensor(inputs, dtype=torch.float32)
    with torch.no_grad():
        np.testing.assert_allclose(model(batch).numpy(), runner.model(batch).numpy(), rtol=1e-6, atol=1e-6)


def _keras_predictions_match(aggregator: Path, env_backend: str) -> None:
    import os
    import subprocess
    import sys

    script = (
        "import os, sys, numpy as np, keras\n"
        "os.chdir(sys.argv[1])\n"
        "from openfl_cli import get_model\n"
        "runner = get_model('plan/plan.yaml', 'plan/cols.yaml', 'plan/data.yaml', 'save/best.pbuf')\n"
        "native = keras.saving.load_model('save/model.keras')\n"
        "x = np.random.default_rng(0).random((8,) + tuple(native.input_shape[1:])).astype('float32')\n"
        "expected = runner.model.predict(x, verbose=0)\n"
        "np.testing.assert_allclose(native.predict(x, verbose=0), expected, atol=1e-5)\n"
        "print('PREDICTIONS MATCH')\n"
    )
    env = dict(os.environ, KERAS_BACKEND=env_backend)
    proc = subprocess.run(
        [sys.executable, "-c", script, str(aggregator)], capture_output=True, text=True, env=env
    )
    assert "PREDICTIONS MATCH" in proc.stdout, proc.stderr[-3000:]


@pytest.mark.keras
def test_quickstart_keras_mnist(tmp_path: Path) -> None:
    pytest.importorskip("keras")
    pytest.importorskip("tensorflow")
    aggregator = _quickstart(tmp_path, "keras/mnist", rounds=2, env={"KERAS_BACKEND": "tensorflow"})
    _rises(aggregator)
    _keras_predictions_match(aggregator, "tensorflow")


@pytest.mark.keras
def test_quickstart_keras_jax_mnist_one_round(tmp_path: Path) -> None:
    pytest.importorskip("keras")
    pytest.importorskip("jax")
    aggregator = _quickstart(tmp_path, "keras/jax/mnist", rounds=1, env={"KERAS_BACKEND": "jax"})
    assert (aggregator / "save" / "model.keras").is_file()


def _processes_under(folder: Path) -> list[int]:
    """Pids of live processes whose working directory is inside `folder`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:
            continue
        if cwd == folder or folder in cwd.parents:
            found.append(int(entry.name))
    return found


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.skipif(not Path("/proc/self/cwd").exists(), reason="needs /proc to find the children")
def test_ctrl_c_stops_every_process_it_started(tmp_path: Path) -> None:
    prefix = (tmp_path / "qs").resolve()
    args = ["quickstart", "--template", "numpy/digits", "--rounds", "500", "--prefix", str(prefix)]
    quickstart = subprocess.Popen(
        [*FX, *args],
        cwd=tmp_path,
        env=fx_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # Ctrl-C as a terminal delivers it, whatever this test inherited (a shell's background job
        # runs with SIGINT ignored, and a child keeps that)
        preexec_fn=_default_sigint,
    )
    try:
        assert quickstart.stdout is not None
        for line in quickstart.stdout:
            if "round 2/500" in line:  # the federation is running: aggregator and collaborators are up
                break
        else:
            pytest.fail("the quickstart ended before its federation ran")
        assert len(_processes_under(prefix)) >= 3
        quickstart.send_signal(signal.SIGINT)
        quickstart.communicate(timeout=60)
    finally:
        if quickstart.poll() is None:
            quickstart.kill()
    assert quickstart.returncode != 0
    deadline = time.monotonic() + 10
    while _processes_under(prefix) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_under(prefix) == [], "Ctrl-C left participants running"
