"""The workspace and model commands through the real `fx` entry point (in process), and start-up weight."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from openfl_cli.workspace import requirements
from tests.workspace.cli_run import fx_in_process

HEAVY = ("numpy", "grpc", "yaml", "torch", "tensorflow", "ray", "sklearn", "google.protobuf", "cryptography")


def test_create_help_lists_templates(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = fx_in_process(["workspace", "create", "--help"], capsys)
    assert code == 0
    assert "Templates:" in out and "numpy/digits" in out


@pytest.mark.parametrize("template", ["no/such", "../numpy/digits"])
def test_bad_template_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], template: str
) -> None:
    code, _out, err = fx_in_process(
        ["workspace", "create", "--prefix", str(tmp_path / "ws"), "--template", template], capsys
    )
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("fx: error: ") and "numpy/digits" in err
    assert not (tmp_path / "ws").exists()


def test_create_export_import(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    code, out, _ = fx_in_process(["workspace", "create", "--prefix", str(tmp_path / "ws")], capsys)
    assert code == 0 and str(tmp_path / "ws") in out
    monkeypatch.chdir(tmp_path / "ws")
    code, out, _ = fx_in_process(["workspace", "export"], capsys)
    assert code == 0 and str(tmp_path / "ws" / "ws.zip") in out
    assert "requirements.txt: " in out and "packages pinned" in out and "openfl-cli (fx itself)" in out

    calls: list[list[str]] = []
    monkeypatch.setattr(
        requirements.subprocess,
        "run",
        lambda argv, **kw: calls.append(argv) or subprocess.CompletedProcess(argv, 0, stderr=""),
    )
    (tmp_path / "node").mkdir()
    monkeypatch.chdir(tmp_path / "node")
    args = ["workspace", "import", "--archive", str(tmp_path / "ws" / "ws.zip"), "--no-install-requirements"]
    code, out, _ = fx_in_process(args, capsys)
    assert code == 0 and (tmp_path / "node" / "ws" / "plan" / "plan.yaml").is_file() and calls == []
    assert "Not installing its requirements" in out and "-m pip install -r" in out

    (tmp_path / "other").mkdir()
    monkeypatch.chdir(tmp_path / "other")
    archive = str(tmp_path / "ws" / "ws.zip")
    code, out, _ = fx_in_process(["workspace", "import", "-a", archive], capsys)  # installs
    assert code == 0 and len(calls) == 1 and calls[0][1:4] == ["-m", "pip", "install"]
    steps = [line.split(" ")[0] for line in out.splitlines()]
    assert steps == ["Unpacking", "Unpacked", "Installing", "Installed", "Imported"], out


def test_model_save_without_snapshot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = fx_in_process(
        ["model", "save", "-i", str(tmp_path / "none.pbuf"), "-o", str(tmp_path / "m.npz")], capsys
    )
    assert code == 2 and err.strip() == f"fx: error: snapshot {tmp_path / 'none.pbuf'} not found"


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["workspace", "create", "--help"],
        ["workspace", "dockerize", "--help"],
        ["workspace", "verify-image", "--help"],
        ["model", "save", "--help"],
    ],
)
def test_help_imports_nothing_heavy(args: list[str]) -> None:
    probe = (
        "import json, sys\n"
        "from openfl_cli.cli.main import main\n"
        "try:\n"
        f"    main({args!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "sys.stderr.write(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded = set(json.loads(done.stderr))
    assert not [m for m in loaded if m.split(".")[0] in HEAVY or m in HEAVY]
