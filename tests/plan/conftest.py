"""Tiny workspaces for plan tests: a plan, cols/data files and a small src/ package of our own."""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

DATALOADER = """
from openfl_cli.data.base import DataLoader


class TinyLoader(DataLoader):
    def __init__(self, data_path, batch_size, collaborator_count=None, scale=1.0, **settings):
        super().__init__(data_path, batch_size, collaborator_count, **settings)
        self.scale = scale

    def get_train_loader(self, **kwargs):
        return [[1.0 * self.scale]]

    def get_valid_loader(self, **kwargs):
        return [[2.0 * self.scale]]

    def get_train_data_size(self):
        return 10

    def get_valid_data_size(self):
        return 5
"""

TASKRUNNER = '''
import numpy as np

from openfl_cli.runners.base import TaskRunner


class TinyRunner(TaskRunner):
    """A strict constructor (no **kwargs) so unknown settings are caught."""

    def __init__(self, data_loader=None, hidden=3):
        super().__init__(data_loader)
        self.weights = {
            "dense/w": np.arange(2 * hidden, dtype=np.float32).reshape(2, hidden),
            "dense/b": np.zeros(hidden, dtype=np.float32),
        }

    def get_tensor_dict(self, with_opt_vars=False):
        return {name: value.copy() for name, value in self.weights.items()}

    def set_tensor_dict(self, tensors, with_opt_vars=False):
        self.weights.update(tensors)

    def reset_opt_vars(self):
        pass

    def train_epoch(self, round_number, **kwargs):
        return {"loss": 0.5}

    def validate_pass(self, round_number, **kwargs):
        return {"acc": 0.9}
'''

PLAN = """\
aggregator:
  defaults: plan/defaults/aggregator.yaml
  template: openfl_cli.federation.aggregator.Aggregator
  settings:
    rounds_to_train: 3
collaborator:
  defaults: plan/defaults/collaborator.yaml
  template: openfl_cli.federation.collaborator.Collaborator
data_loader:
  template: src.dataloader.TinyLoader
  settings:
    batch_size: 4
    collaborator_count: 2
task_runner:
  template: src.taskrunner.TinyRunner
  settings: {}
network:
  defaults: plan/defaults/network.yaml
assigner:
  defaults: plan/defaults/assigner.yaml
compression_pipeline:
  defaults: plan/defaults/compression_pipeline.yaml
tasks:
  defaults: plan/defaults/tasks_numpy.yaml
"""

MakeWorkspace = Callable[..., Path]


@pytest.fixture
def make_workspace(tmp_path: Path) -> MakeWorkspace:
    """Write a workspace; `files` maps relative paths to contents (dedented). Returns its folder."""
    counter = iter(range(1000))

    def make(
        plan: str = PLAN,
        files: dict[str, str] | None = None,
        cols: str | None = "collaborators:\n- one\n- two\n",
        data: str | None = "one: '1'\ntwo: '2'\n",
        name: str | None = None,
    ) -> Path:
        root = tmp_path / (name or f"ws{next(counter)}")
        contents = {
            "plan/plan.yaml": plan,
            "src/__init__.py": "",
            "src/dataloader.py": DATALOADER,
            "src/taskrunner.py": TASKRUNNER,
            **({"plan/cols.yaml": cols} if cols is not None else {}),
            **({"plan/data.yaml": data} if data is not None else {}),
            **(files or {}),
        }
        for relative, text in contents.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text), encoding="utf-8")
        return root

    return make


@pytest.fixture
def in_workspace(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], Path]:
    """Make a workspace the current folder (commands run there, like OpenFL)."""

    def enter(root: Path) -> Path:
        monkeypatch.chdir(root)
        return root

    return enter


@pytest.fixture(autouse=True)
def _clean_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No FQDN from the caller's environment, and no workspace `src` package left for other tests."""
    if "FQDN" in os.environ:
        monkeypatch.delenv("FQDN")
    yield
    for name in [n for n in sys.modules if n == "src" or n.startswith("src.")]:
        del sys.modules[name]
