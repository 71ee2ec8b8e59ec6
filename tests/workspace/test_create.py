from __future__ import annotations

from pathlib import Path

import pytest

from openfl_cli.errors import UsageError
from openfl_cli.workspace.create import create_workspace
from openfl_cli.workspace.layout import WORKSPACE_DIRS
from openfl_cli.workspace.templates import template_path


def test_creates_the_full_layout(tmp_path: Path) -> None:
    workspace = create_workspace(tmp_path / "deep" / "ws", "numpy/digits")
    assert workspace == tmp_path / "deep" / "ws"
    for name in WORKSPACE_DIRS:
        assert (workspace / name).is_dir(), name
    source = template_path("numpy/digits")
    assert (workspace / "plan" / "plan.yaml").read_text() == (source / "plan" / "plan.yaml").read_text()
    assert (workspace / "plan" / "cols.yaml").read_text() == "collaborators: []\n"
    assert (workspace / "src" / "taskrunner.py").is_file()
    assert "scikit-learn" in (workspace / "requirements.txt").read_text()
    assert not list(workspace.rglob("__pycache__"))
    assert [p.name for p in tmp_path.joinpath("deep").iterdir()] == ["ws"]  # no staging folder left


def test_an_empty_folder_is_fine(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    assert (create_workspace(tmp_path / "ws", "numpy/digits") / "plan" / "plan.yaml").is_file()


def test_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    target = tmp_path / "ws"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="not empty; refusing to overwrite"):
        create_workspace(target, "numpy/digits")
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["ws"]


def test_refuses_a_file(tmp_path: Path) -> None:
    (tmp_path / "ws").write_text("x")
    with pytest.raises(UsageError, match="is not a folder"):
        create_workspace(tmp_path / "ws", "numpy/digits")


def test_unknown_template_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown template"):
        create_workspace(tmp_path / "ws", "no/such")
    assert list(tmp_path.iterdir()) == []
