from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from openfl_cli.errors import FxError, SecurityError, UsageError
from openfl_cli.workspace import requirements
from openfl_cli.workspace.export import export_workspace
from openfl_cli.workspace.import_archive import import_workspace


def _zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as handle:
        for name, content in entries.items():
            handle.writestr(name, content)
    return path


@pytest.fixture
def archive(workspace: Path) -> Path:
    return export_workspace(workspace)


def test_round_trip(archive: Path, tmp_path: Path) -> None:
    node = tmp_path / "node"
    node.mkdir()
    imported = import_workspace(archive, node)
    assert imported == node / "ws"
    source = archive.parent
    for name in ("plan/plan.yaml", "src/taskrunner.py", "src/dataloader.py"):
        assert (imported / name).read_bytes() == (source / name).read_bytes()
    assert (imported / "requirements.txt").read_text().startswith("# the packages of the environment")
    for folder in ("save", "logs", "data", "cert", "local_state"):
        assert (imported / folder).is_dir()
    assert [p.name for p in node.iterdir()] == ["ws"]


def test_refuses_a_non_empty_target(archive: Path, tmp_path: Path) -> None:
    (tmp_path / "node" / "ws").mkdir(parents=True)
    (tmp_path / "node" / "ws" / "keep.txt").write_text("mine")
    with pytest.raises(UsageError, match="not empty"):
        import_workspace(archive, tmp_path / "node")
    assert [p.name for p in (tmp_path / "node" / "ws").iterdir()] == ["keep.txt"]


@pytest.mark.parametrize(
    "evil", ["../evil.py", "/tmp/evil_absolute.py", "plan/../../evil.py", "..\\evil.py", "C:/evil.py"]
)
def test_refuses_entries_outside_the_target(tmp_path: Path, evil: str) -> None:
    archive = _zip(tmp_path / "bad.zip", {"plan/plan.yaml": b"{}\n", evil: b"print('owned')"})
    node = tmp_path / "node"
    node.mkdir()
    with pytest.raises(SecurityError, match="outside"):
        import_workspace(archive, node)
    assert list(node.iterdir()) == []  # nothing written, no staging folder left
    assert not (tmp_path / "evil.py").exists()


def test_refuses_an_archive_that_is_not_a_workspace(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "stuff.zip", {"readme.txt": b"hello"})
    with pytest.raises(UsageError, match="not a workspace"):
        import_workspace(archive, tmp_path / "node")
    assert list((tmp_path / "node").iterdir()) == []


def test_missing_archive(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not found"):
        import_workspace(tmp_path / "nope.zip", tmp_path)


def test_requirements_are_installed_only_when_asked(
    archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[list[str], dict]] = []

    def fake_run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[bytes]:
        calls.append((argv, kwargs))
        return subprocess.CompletedProcess(argv, 0, stderr="")

    monkeypatch.setattr(requirements.subprocess, "run", fake_run)
    import_workspace(archive, tmp_path / "a")
    assert calls == []

    imported = import_workspace(archive, tmp_path / "b", install_requirements=True)
    assert len(calls) == 1
    argv, kwargs = calls[0]
    assert argv == [sys.executable, "-m", "pip", "install", "-r", str(imported / "requirements.txt")]
    assert not kwargs.get("shell")


def test_failed_install_is_an_error(archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        requirements.subprocess,
        "run",
        lambda argv, **kw: subprocess.CompletedProcess(argv, 3, stderr="ERROR: no such thing\n"),
    )
    with pytest.raises(FxError, match="pip exited with 3: no such thing"):
        import_workspace(archive, tmp_path / "node", install_requirements=True)
