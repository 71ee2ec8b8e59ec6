"""A task's `batch_size` (OpenFL's Keras tasks set one) reaches the data loader through both
framework runners, and the Keras MNIST template's loader batches by it."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from openfl_cli.data.base import DataLoader
from tests.runners.helpers import ONE_THREAD, BlobLoader, template_src, write_tiny_mnist

for _name, _value in ONE_THREAD.items():
    os.environ.setdefault(_name, _value)


class Recording(DataLoader):
    """Blobs in batches of the size asked for; remembers every loader call's keyword arguments."""

    def __init__(self, to_batch: Any = np.asarray) -> None:
        super().__init__("1", batch_size=16)
        self.x, self.y = BlobLoader.arrays(1)
        self.to_batch = to_batch
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def _batches(self, part: str, kwargs: dict[str, Any]) -> list[tuple[Any, Any]]:
        self.calls.append((part, dict(kwargs)))
        size = kwargs.get("batch_size", self.batch_size)
        return [
            (self.to_batch(self.x[i : i + size]), self.to_batch(self.y[i : i + size]))
            for i in range(0, 32, size)
        ]

    def get_train_loader(self, **kwargs: Any) -> list[tuple[Any, Any]]:
        return self._batches("train", kwargs)

    def get_valid_loader(self, **kwargs: Any) -> list[tuple[Any, Any]]:
        return self._batches("valid", kwargs)

    def get_train_data_size(self) -> int:
        return 32

    def get_valid_data_size(self) -> int:
        return 32

    def get_feature_shape(self) -> tuple[int, ...]:
        return (4,)


def _run_tasks(runner: Any, loader: Recording) -> None:
    runner.train_task(0, epochs=1, metrics=["loss"], batch_size=8)
    runner.validate_task(0, apply="global", metrics=["accuracy"], batch_size=4)
    runner.validate_task(0, apply="local", metrics=["acc"])
    assert loader.calls == [("train", {"batch_size": 8}), ("valid", {"batch_size": 4}), ("valid", {})]


@pytest.mark.keras
def test_keras_runner_hands_the_task_batch_size_to_the_loader():
    keras = pytest.importorskip("keras")
    from openfl_cli.runners.keras import KerasTaskRunner

    class Tiny(KerasTaskRunner):
        def build_model(self) -> Any:
            return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])

    loader = Recording()
    _run_tasks(Tiny(loader), loader)


@pytest.mark.torch
def test_torch_runner_hands_the_task_batch_size_to_the_loader():
    torch = pytest.importorskip("torch")
    from openfl_cli.runners.torch import PyTorchTaskRunner

    class Tiny(PyTorchTaskRunner):
        def build_model(self) -> Any:
            return torch.nn.Linear(4, 3)

    loader = Recording(torch.from_numpy)
    _run_tasks(Tiny(loader, device="cpu"), loader)


def test_keras_mnist_loader_batches_by_the_task_batch_size(tmp_path: Path):
    write_tiny_mnist(tmp_path / "mnist", n_train=40, n_test=20)
    with template_src("keras/mnist"):
        module = importlib.import_module("src.dataloader")
        loader = module.KerasMNISTInMemory(
            "1", 16, collaborator_count=1, mnist_folder=str(tmp_path / "mnist")
        )
        assert [len(y) for _, y in loader.get_train_loader()] == [16, 16, 8]
        assert [len(y) for _, y in loader.get_train_loader(batch_size=32)] == [32, 8]
        assert [len(y) for _, y in loader.get_valid_loader(batch_size=8)] == [8, 8, 4]
        assert loader.get_valid_loader(batch_size=16) is loader.get_valid_loader()
