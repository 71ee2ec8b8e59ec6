"""Fixtures for workspace tests: the digits template's code, imported straight from the template."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from openfl_cli.utils.resources import bundled_dir

DIGITS = bundled_dir("workspace_templates") / "numpy" / "digits"


def _load(path: Path, name: str) -> ModuleType:
    # unique module names: the workspace's own `src` package must not be shadowed by the tests
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def digits_dataloader() -> ModuleType:
    return _load(DIGITS / "src" / "dataloader.py", "digits_template_dataloader")


@pytest.fixture(scope="session")
def digits_taskrunner() -> ModuleType:
    return _load(DIGITS / "src" / "taskrunner.py", "digits_template_taskrunner")


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A fresh numpy/digits workspace."""
    from openfl_cli.workspace.create import create_workspace

    return create_workspace(tmp_path / "ws", "numpy/digits")
