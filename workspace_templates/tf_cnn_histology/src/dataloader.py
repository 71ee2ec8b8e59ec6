"""Colorectal histology tiles for TensorFlow (Keras 3): one shard per collaborator, uint8 in memory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from openfl_cli.data.base import DataLoader, shard_index
from src.histology import load_histology

Batch = tuple[np.ndarray, np.ndarray]


class TileBatches:
    """Re-iterable batches: uint8 (N, H, W, 3) tiles become float32 in [0, 1] one batch at a time."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int, shuffle: bool, seed: int = 0):
        self.images, self.labels = images, labels
        self.batch_size, self.shuffle = batch_size, shuffle
        self.rng = np.random.default_rng(seed)

    def __iter__(self) -> Iterator[Batch]:
        n = len(self.labels)
        order = self.rng.permutation(n) if self.shuffle else np.arange(n)
        for start in range(0, n, self.batch_size):
            index = order[start : start + self.batch_size]
            yield self.images[index].astype(np.float32) / 255.0, self.labels[index]

    def __len__(self) -> int:
        return -(-len(self.labels) // self.batch_size)


class TensorFlowHistologyInMemory(DataLoader):
    """`data_path` is a shard number (1..collaborator_count) of the tiles in `histology_folder`, or a
    folder holding this collaborator's own tiles (used whole)."""

    def __init__(
        self,
        data_path: str,
        batch_size: int,
        collaborator_count: int | None = None,
        histology_folder: str = "data/histology",
        image_size: int = 150,
        valid_fraction: float = 0.2,
        seed: int = 0,
        **settings: Any,
    ) -> None:
        super().__init__(data_path, batch_size, collaborator_count, **settings)
        if Path(data_path).is_dir():
            folder, index, count = data_path, 0, 1
        else:
            folder, (index, count) = histology_folder, shard_index(data_path, collaborator_count)
        self.classes, train, valid = load_histology(folder, index, count, valid_fraction, image_size, seed)
        self.train_batches = TileBatches(*train, self.batch_size, True, seed)
        self.valid_batches = TileBatches(*valid, self.batch_size, False)
        self.image_size = image_size

    def get_train_loader(self, **kwargs: Any) -> TileBatches:
        return self.train_batches

    def get_valid_loader(self, **kwargs: Any) -> TileBatches:
        return self.valid_batches

    def get_train_data_size(self) -> int:
        return len(self.train_batches.labels)

    def get_valid_data_size(self) -> int:
        return len(self.valid_batches.labels)

    def get_feature_shape(self) -> tuple[int, ...]:
        return (self.image_size, self.image_size, 3)
