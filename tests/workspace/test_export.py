from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from openfl_cli.errors import UsageError
from openfl_cli.workspace.export import export_workspace

PEM_KEY = b"-----BEGIN PRIVATE KEY-----\nMIIE...\n-----END PRIVATE KEY-----\n"


def _names(archive: Path) -> list[str]:
    with zipfile.ZipFile(archive) as handle:
        return handle.namelist()


def _plant_secrets(workspace: Path) -> None:
    """Everything a real node accumulates that must never be exported."""
    files = {
        "cert/cert_chain.crt": b"chain",
        "cert/client/col_one.key": PEM_KEY,
        "cert/client/col_one.csr": b"csr",
        "cert/ca/root.pem": b"pem",
        "save/init.pbuf": b"weights",
        "save/native/model.npz": b"model",
        "local_state/tensor.db": b"db",
        "logs/run.log": b"log",
        "data/shard.npy": b"data",
        "col_one_to_agg_cert_request.zip": b"zip",
        "src/stray.key": b"key",
        "src/stray.crt": b"crt",
        "src/model.pbuf": b"snapshot",
        "src/old_export.zip": b"zip",
        "src/.env": b"TOKEN=secret",
        "src/credentials.txt": b"here it is\n" + PEM_KEY,
        "plan/ca.pem": b"pem",
        "src/__pycache__/taskrunner.cpython-311.pyc": b"bytecode",
    }
    for name, content in files.items():
        path = workspace / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    (workspace / "src" / "link.py").symlink_to("/etc/hostname")


def test_export_holds_plan_code_and_requirements_only(workspace: Path) -> None:
    _plant_secrets(workspace)
    (workspace / "plan" / "data.yaml").write_text("one: /very/private/path\n")
    (workspace / "plan" / "cols.yaml").write_text("collaborators: [one]\n")
    (workspace / "src" / "helpers").mkdir()
    (workspace / "src" / "helpers" / "util.py").write_text("X = 1\n")

    archive = export_workspace(workspace)

    assert archive == workspace / "ws.zip"
    names = _names(archive)
    assert sorted(n for n in names if not n.endswith("/")) == [
        "plan/cols.yaml",
        "plan/data.yaml",
        "plan/plan.yaml",
        "requirements.txt",
        "src/__init__.py",
        "src/dataloader.py",
        "src/helpers/util.py",
        "src/taskrunner.py",
    ]
    assert {"save/", "logs/", "data/", "cert/", "local_state/"} <= set(names)
    with zipfile.ZipFile(archive) as handle:
        assert handle.read("plan/data.yaml") == b"{}\n"  # node-specific: shipped empty
        assert handle.read("plan/cols.yaml") == b"collaborators: [one]\n"
        for name in names:
            assert b"PRIVATE KEY" not in handle.read(name)


@pytest.mark.parametrize("suffix", [".key", ".crt", ".csr", ".pem", ".pbuf", ".zip", ".KEY"])
def test_no_secret_suffix_ever(workspace: Path, suffix: str) -> None:
    (workspace / "src" / f"thing{suffix}").write_bytes(b"x")
    (workspace / "plan" / f"thing{suffix}").write_bytes(b"x")
    names = _names(export_workspace(workspace))
    assert not [n for n in names if n.lower().endswith(suffix.lower())]


def test_export_never_contains_itself(workspace: Path) -> None:
    first = export_workspace(workspace)
    second = export_workspace(workspace)
    assert first == second
    assert not [n for n in _names(second) if n.endswith(".zip")]
    assert not [p for p in workspace.iterdir() if p.name.endswith(".tmp")]


def test_export_to_a_chosen_path(workspace: Path, tmp_path: Path) -> None:
    archive = export_workspace(workspace, tmp_path / "out" / "shared.zip")
    assert archive == tmp_path / "out" / "shared.zip"
    assert "plan/plan.yaml" in _names(archive)


def test_export_outside_a_workspace_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="is not a workspace"):
        export_workspace(tmp_path)
