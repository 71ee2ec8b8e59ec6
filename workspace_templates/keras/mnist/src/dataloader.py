"""MNIST for Keras, held in memory as NumPy arrays: one shard per collaborator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from openfl_cli.data.base import DataLoader, shard_index
from src.mnist import load_mnist, shard

Batch = tuple[np.ndarray, np.ndarray]


class ArrayBatches:
    """Re-iterable batches over in-memory arrays, reshuffled on each pass when `shuffle`."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool, seed: int = 0):
        self.x, self.y, self.batch_size, self.shuffle = x, y, batch_size, shuffle
        self.rng = np.random.default_rng(seed)

    def __iter__(self) -> Iterator[Batch]:
        if self.shuffle:
            order = self.rng.permutation(len(self.y))
            x, y = self.x[order], self.y[order]
        else:
            x, y = self.x, self.y
        for start in range(0, len(y), self.batch_size):
            yield x[start : start + self.batch_size], y[start : start + self.batch_size]

    def __len__(self) -> int:
        return -(-len(self.y) // self.batch_size)


class KerasMNISTInMemory(DataLoader):
    """`data_path` is a shard number (1..collaborator_count) of MNIST read from `mnist_folder`, or a
    folder holding this collaborator's own MNIST files (used whole). Images are (28, 28, 1) in [0, 1]."""

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
        if Path(data_path).is_dir():
            x_train, y_train, x_valid, y_valid = load_mnist(data_path)
        else:
            index, count = shard_index(data_path, collaborator_count)
            x_train, y_train, x_valid, y_valid = shard(load_mnist(mnist_folder), index, count)
        self.x_train, self.y_train = _images(x_train), y_train
        self.x_valid, self.y_valid = _images(x_valid), y_valid
        self.train_batches = ArrayBatches(self.x_train, self.y_train, self.batch_size, True, seed)
        self.valid_batches = ArrayBatches(self.x_valid, self.y_valid, self.batch_size, False)

    def get_train_loader(self, **kwargs: Any) -> ArrayBatches:
        return self.train_batches

    def get_valid_loader(self, **kwargs: Any) -> ArrayBatches:
        return self.valid_batches

    def get_train_data_size(self) -> int:
        return len(self.y_train)

    def get_valid_data_size(self) -> int:
        return len(self.y_valid)

    def get_feature_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def _images(pixels: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 28, 28, 1) in [0, 1]."""
    return (pixels.astype(np.float32) / 255.0)[..., None]
