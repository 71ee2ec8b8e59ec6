"""The torch/mnist template: its data loader (real IDX files, shards, offline fallback) and its runner."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from openfl_cli.errors import UsageError  # noqa: E402
from tests.runners.helpers import template_src, write_tiny_mnist  # noqa: E402

pytestmark = pytest.mark.torch
torch.set_num_threads(1)


@pytest.fixture
def src():
    with template_src("torch/mnist") as module:
        yield module


@pytest.mark.parametrize("gz", [True, False])
def test_reads_idx_files_and_shards_them(src, tmp_path: Path, gz: bool) -> None:
    from src.dataloader import PyTorchMNISTInMemory

    write_tiny_mnist(tmp_path / "mnist", n_train=40, n_test=20, gz=gz)
    shards = [PyTorchMNISTInMemory(str(i), 8, 2, mnist_folder=str(tmp_path / "mnist")) for i in (1, 2)]
    assert [s.get_train_data_size() for s in shards] == [20, 20]
    assert [s.get_valid_data_size() for s in shards] == [10, 10]
    assert shards[0].get_feature_shape() == (1, 28, 28)
    assert not torch.equal(shards[0].x_train, shards[1].x_train)
    batches = list(shards[0].get_train_loader())
    assert [len(y) for _, y in batches] == [8, 8, 4]
    assert batches[0][0].dtype == torch.float32 and batches[0][1].dtype == torch.int64


def test_a_folder_data_path_is_used_whole_and_npz_is_accepted(src, tmp_path: Path) -> None:
    from src.dataloader import PyTorchMNISTInMemory

    folder = tmp_path / "own"
    folder.mkdir()
    rng = np.random.default_rng(0)
    np.savez(
        folder / "mnist.npz",
        x_train=rng.integers(0, 255, (12, 28, 28), dtype=np.uint8),
        y_train=np.arange(12) % 10,
        x_test=np.zeros((4, 28, 28), np.uint8),
        y_test=np.arange(4),
    )
    loader = PyTorchMNISTInMemory(str(folder), 5, 3)
    assert (loader.get_train_data_size(), loader.get_valid_data_size()) == (12, 4)


def test_offline_falls_back_to_digits_and_says_so(src, tmp_path: Path, caplog, monkeypatch) -> None:
    from src.dataloader import PyTorchMNISTInMemory

    monkeypatch.setenv("FX_OFFLINE", "1")
    with caplog.at_level(logging.WARNING):
        shards = [PyTorchMNISTInMemory(str(i), 64, 2, mnist_folder=str(tmp_path / "none")) for i in (1, 2)]
    assert "scikit-learn's 8x8 handwritten digits" in caplog.text
    assert sum(s.get_train_data_size() for s in shards) + sum(s.get_valid_data_size() for s in shards) == 1797
    assert not (tmp_path / "none").exists()  # nothing downloaded, nothing created
    image = shards[0].x_train[0, 0]
    assert image.shape == (28, 28)
    assert float(image[:4].max()) == float(image.min())  # the 4-pixel border stays empty, as in MNIST


def test_bad_shard_numbers_are_usage_errors(src, tmp_path: Path) -> None:
    from src.dataloader import PyTorchMNISTInMemory

    write_tiny_mnist(tmp_path)
    with pytest.raises(UsageError, match="shard number"):
        PyTorchMNISTInMemory("3", 8, 2, mnist_folder=str(tmp_path))


def test_template_runner_trains_on_tiny_mnist(src, tmp_path: Path) -> None:
    from src.dataloader import PyTorchMNISTInMemory
    from src.taskrunner import TemplateTaskRunner

    write_tiny_mnist(tmp_path, n_train=60, n_test=20)
    runner = TemplateTaskRunner(PyTorchMNISTInMemory("1", 10, 1, mnist_folder=str(tmp_path)))
    first = runner.train_task(0, metrics=["loss"])
    for round_number in range(1, 4):
        last = runner.train_task(round_number, metrics=["loss"])
    assert last.metrics["loss"] < first.metrics["loss"]
    assert runner.validate_task(3, metrics=["acc"]).sample_count == 20
