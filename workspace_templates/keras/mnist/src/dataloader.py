"""MNIST for Keras, held in memory as NumPy arrays: one shard per collaborator."""

from __future__ import annotations

from typing import Any

import numpy as np

from openfl_cli.data.base import DataLoader
from openfl_cli.data.batches import ArrayBatches
from openfl_cli.data.mnist import load_mnist
from openfl_cli.data.sharding import resolve_data_path, shard_arrays


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
        folder, index, count = resolve_data_path(data_path, collaborator_count, mnist_folder)
        x_train, self.y_train, x_valid, self.y_valid = shard_arrays(load_mnist(folder), index, count)
        self.x_train, self.x_valid = _images(x_train), _images(x_valid)
        self.train_batches = ArrayBatches(self.x_train, self.y_train, batch_size, shuffle=True, seed=seed)
        self.valid_batches = ArrayBatches(self.x_valid, self.y_valid, batch_size)
        self.seed = seed
        self._task_batches: dict[tuple[str, int], ArrayBatches] = {}  # a task's own batch_size

    def get_train_loader(self, batch_size: int | None = None, **kwargs: Any) -> ArrayBatches:
        """Batches of the data loader's size, or of a task's own `batch_size` (OpenFL's Keras tasks)."""
        if batch_size is None or batch_size == self.batch_size:
            return self.train_batches
        return self._sized("train", int(batch_size))

    def get_valid_loader(self, batch_size: int | None = None, **kwargs: Any) -> ArrayBatches:
        if batch_size is None or batch_size == self.batch_size:
            return self.valid_batches
        return self._sized("valid", int(batch_size))

    def _sized(self, part: str, batch_size: int) -> ArrayBatches:
        key = (part, batch_size)
        if key not in self._task_batches:
            train = part == "train"
            x, y = (self.x_train, self.y_train) if train else (self.x_valid, self.y_valid)
            self._task_batches[key] = ArrayBatches(x, y, batch_size, shuffle=train, seed=self.seed)
        return self._task_batches[key]

    def get_train_data_size(self) -> int:
        return len(self.y_train)

    def get_valid_data_size(self) -> int:
        return len(self.y_valid)

    def get_feature_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def _images(pixels: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 28, 28, 1) in [0, 1]."""
    return (pixels.astype(np.float32) / 255.0)[..., None]
