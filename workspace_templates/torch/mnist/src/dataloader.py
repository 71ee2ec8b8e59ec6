"""MNIST for PyTorch, held in memory as tensors: one shard per collaborator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from openfl_cli.data.base import DataLoader
from openfl_cli.data.mnist import load_mnist
from openfl_cli.data.sharding import resolve_data_path, shard_arrays

MEAN, STD = 0.1307, 0.3081  # MNIST's pixel statistics
Batch = tuple[torch.Tensor, torch.Tensor]


class TensorBatches:
    """Re-iterable batches over in-memory tensors, reshuffled on each pass when `shuffle`."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool, seed: int = 0):
        self.x, self.y, self.batch_size, self.shuffle = x, y, batch_size, shuffle
        self.generator = torch.Generator().manual_seed(seed)

    def __iter__(self) -> Iterator[Batch]:
        n = len(self.y)
        if self.shuffle:
            order = torch.randperm(n, generator=self.generator)
            x, y = self.x[order], self.y[order]
        else:
            x, y = self.x, self.y
        for start in range(0, n, self.batch_size):
            yield x[start : start + self.batch_size], y[start : start + self.batch_size]

    def __len__(self) -> int:
        return -(-len(self.y) // self.batch_size)


class PyTorchMNISTInMemory(DataLoader):
    """`data_path` is a shard number (1..collaborator_count) of MNIST read from `mnist_folder`, or a
    folder holding this collaborator's own MNIST files (used whole)."""

    def __init__(
        self,
        data_path: str,
        batch_size: int,
        collaborator_count: int | None = None,
        mnist_folder: str = "data/mnist",
        seed: int = 0,
        **settings: Any,
    ) -> None:
        super().__init__(data_path, batch_size, collaborator_count, **settings)
        folder, index, count = resolve_data_path(data_path, collaborator_count, mnist_folder)
        x_train, y_train, x_valid, y_valid = shard_arrays(load_mnist(folder), index, count)
        self.x_train, self.y_train = _images(x_train), torch.from_numpy(y_train)
        self.x_valid, self.y_valid = _images(x_valid), torch.from_numpy(y_valid)
        self.train_batches = TensorBatches(self.x_train, self.y_train, self.batch_size, True, seed)
        self.valid_batches = TensorBatches(self.x_valid, self.y_valid, self.batch_size, False)

    def get_train_loader(self, **kwargs: Any) -> TensorBatches:
        return self.train_batches

    def get_valid_loader(self, **kwargs: Any) -> TensorBatches:
        return self.valid_batches

    def get_train_data_size(self) -> int:
        return len(self.y_train)

    def get_valid_data_size(self) -> int:
        return len(self.y_valid)

    def get_feature_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def _images(pixels: np.ndarray) -> torch.Tensor:
    """uint8 (N, 28, 28) -> normalized float32 (N, 1, 28, 28)."""
    scaled = (pixels.astype(np.float32) / 255.0 - MEAN) / STD
    return torch.from_numpy(scaled[:, None, :, :].copy())
