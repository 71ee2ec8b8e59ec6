"""Writing initial weights and saving a model need no data set (issue 18, item 17): the task runner
gets a data loader that is built only when asked for data."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from openfl_cli.data.base import DataLoader
from openfl_cli.data.deferred import DeferredDataLoader
from openfl_cli.plan.initialize import initialize
from openfl_cli.workspace.model import save_model
from tests.cli.test_node_cert_commands import ok
from tests.conftest import fx_env


class Counted(DataLoader):
    built = 0

    def __init__(self) -> None:
        super().__init__("7", batch_size=4)
        Counted.built += 1
        self.classes = ["a", "b"]

    def get_train_loader(self, **kwargs: Any) -> list[int]:
        return [1, 2]

    def get_valid_loader(self, **kwargs: Any) -> list[int]:
        return [3]

    def get_train_data_size(self) -> int:
        return 2

    def get_valid_data_size(self) -> int:
        return 1

    def get_feature_shape(self) -> tuple[int, ...]:
        return (1, 28, 28)


def test_the_real_loader_is_built_once_on_first_use() -> None:
    Counted.built = 0
    deferred = DeferredDataLoader(Counted)
    assert not deferred.built and Counted.built == 0
    threads = [threading.Thread(target=deferred.get_feature_shape) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Counted.built == 1 and deferred.built
    assert deferred.get_feature_shape() == (1, 28, 28)
    assert list(deferred.get_train_loader()) == [1, 2] and list(deferred.get_valid_loader()) == [3]
    assert (deferred.get_train_data_size(), deferred.get_valid_data_size()) == (2, 1)
    assert (deferred.data_path, deferred.batch_size, deferred.classes) == ("7", 4, ["a", "b"])
    assert Counted.built == 1


@pytest.fixture
def workspace_without_its_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An aggregator's workspace whose data.yaml names a collaborator's folder this machine lacks."""
    folder = tmp_path / "ws"
    ok("workspace", "create", "--prefix", folder, "--template", "numpy/digits")
    monkeypatch.chdir(folder)
    (folder / "plan" / "data.yaml").write_text("site1: /data/of/site1/only/there\n")
    return folder


def test_initialize_and_model_save_build_no_data_loader(workspace_without_its_data: Path) -> None:
    done = initialize(agg_addr="localhost")
    assert done.tensor_count == 2 and done.init_state_path.is_file()
    written = save_model(done.init_state_path, workspace_without_its_data / "model.npz")
    assert written.is_file()


def test_validate_builds_no_data_loader_either(workspace_without_its_data: Path) -> None:
    assert ok("plan", "validate").out.startswith("plan OK: ")


def test_initialize_still_checks_the_data_loader_settings(workspace_without_its_data: Path) -> None:
    from openfl_cli.errors import PlanError

    plan = workspace_without_its_data / "plan" / "plan.yaml"
    plan.write_text(plan.read_text().replace("DigitsDataLoader", "DigitsDataLoadr"))
    with pytest.raises(PlanError, match=r"data_loader\.template"):
        initialize(agg_addr="localhost")


@pytest.mark.torch
def test_torch_mnist_initialize_loads_no_data_set_and_no_optimizer(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    folder = tmp_path / "ws"
    ok("workspace", "create", "--prefix", folder, "--template", "torch/mnist")
    code = (
        "import sys\n"
        "from openfl_cli.plan.initialize import initialize\n"
        "initialize(agg_addr='localhost')\n"
        "print('LOADED:' + ' '.join(m for m in ('sklearn', 'torch._dynamo') if m in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=folder, env=fx_env(), capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rsplit("LOADED:", 1)[1].strip() == "", proc.stdout
    assert "MNIST" not in proc.stderr  # neither read, downloaded nor faked
