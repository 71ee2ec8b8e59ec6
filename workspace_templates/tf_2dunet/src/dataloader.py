"""BraTS axial slices for Keras: one shard of cases per collaborator."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from openfl_cli.data.base import DataLoader, shard_index
from src.brats import load_brats

Batch = tuple[np.ndarray, np.ndarray]


class SliceBatches:
    """Re-iterable batches of (slices, masks), reshuffled on each pass when `shuffle`."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool, seed: int = 0):
        self.x, self.y, self.batch_size, self.shuffle = x, y, batch_size, shuffle
        self.rng = np.random.default_rng(seed)

    def __iter__(self) -> Iterator[Batch]:
        order = self.rng.permutation(len(self.y)) if self.shuffle else np.arange(len(self.y))
        for start in range(0, len(order), self.batch_size):
            index = order[start : start + self.batch_size]
            yield self.x[index], self.y[index]

    def __len__(self) -> int:
        return -(-len(self.y) // self.batch_size)


class TensorFlowBratsInMemory(DataLoader):
    """`data_path` is a shard number (1..collaborator_count) of the cases under `brats_folder`, or a
    folder holding this collaborator's own cases (used whole)."""

    def __init__(
        self,
        data_path: str,
        batch_size: int,
        collaborator_count: int | None = None,
        brats_folder: str = "data/brats",
        modalities: Sequence[str] = ("flair",),
        image_size: int = 128,
        valid_fraction: float = 0.2,
        seed: int = 0,
        **settings: Any,
    ) -> None:
        super().__init__(data_path, batch_size, collaborator_count, **settings)
        if Path(data_path).is_dir():
            folder, index, count = data_path, 0, 1
        else:
            folder, (index, count) = brats_folder, shard_index(data_path, collaborator_count)
        train, valid = load_brats(folder, index, count, modalities, image_size, valid_fraction, seed)
        self.train_batches = SliceBatches(*train, self.batch_size, True, seed)
        self.valid_batches = SliceBatches(*valid, self.batch_size, False)
        self.feature_shape = tuple(train[0].shape[1:])

    def get_train_loader(self, **kwargs: Any) -> SliceBatches:
        return self.train_batches

    def get_valid_loader(self, **kwargs: Any) -> SliceBatches:
        return self.valid_batches

    def get_train_data_size(self) -> int:
        return len(self.train_batches.y)

    def get_valid_data_size(self) -> int:
        return len(self.valid_batches.y)

    def get_feature_shape(self) -> tuple[int, ...]:
        return self.feature_shape
