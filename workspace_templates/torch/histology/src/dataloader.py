"""Colorectal histology tiles for PyTorch: one shard per collaborator, tiles kept as uint8 in memory."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from openfl_cli.data.base import DataLoader
from openfl_cli.data.histology import load_histology
from openfl_cli.data.sharding import resolve_data_path

Batch = tuple[torch.Tensor, torch.Tensor]


class TileBatches:
    """Re-iterable batches: uint8 (N, H, W, 3) tiles become float (B, 3, H, W) in [0, 1] per batch."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int, shuffle: bool, seed: int = 0):
        self.images, self.labels = torch.from_numpy(images), torch.from_numpy(labels)
        self.batch_size, self.shuffle = batch_size, shuffle
        self.generator = torch.Generator().manual_seed(seed)

    def __iter__(self) -> Iterator[Batch]:
        n = len(self.labels)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        for start in range(0, n, self.batch_size):
            index = order[start : start + self.batch_size]
            pixels = self.images[index].permute(0, 3, 1, 2).float().div_(255.0)
            yield pixels, self.labels[index]

    def __len__(self) -> int:
        return -(-len(self.labels) // self.batch_size)


class PyTorchHistology(DataLoader):
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
        return (3, self.image_size, self.image_size)
