"""Colorectal histology tiles for Keras: one shard per collaborator, tiles kept as uint8 in memory."""

from __future__ import annotations

from typing import Any

import numpy as np

from openfl_cli.data.base import DataLoader
from openfl_cli.data.batches import ArrayBatches
from openfl_cli.data.histology import load_histology
from openfl_cli.data.sharding import resolve_data_path


class KerasHistology(DataLoader):
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
        folder, index, count = resolve_data_path(data_path, collaborator_count, histology_folder)
        self.classes, train, valid = load_histology(folder, index, count, valid_fraction, image_size, seed)
        self.train_batches = ArrayBatches(*train, self.batch_size, shuffle=True, seed=seed, transform=_floats)
        self.valid_batches = ArrayBatches(*valid, self.batch_size, transform=_floats)
        self.image_size = image_size

    def get_train_loader(self, **kwargs: Any) -> ArrayBatches:
        return self.train_batches

    def get_valid_loader(self, **kwargs: Any) -> ArrayBatches:
        return self.valid_batches

    def get_train_data_size(self) -> int:
        return len(self.train_batches.y)

    def get_valid_data_size(self) -> int:
        return len(self.valid_batches.y)

    def get_feature_shape(self) -> tuple[int, ...]:
        return (self.image_size, self.image_size, 3)


def _floats(tiles: np.ndarray) -> np.ndarray:
    """uint8 tiles -> float32 in [0, 1], one batch at a time (the whole set stays uint8)."""
    return tiles.astype(np.float32) / 255.0
