"""BraTS axial slices for Keras: one shard of cases per collaborator."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from openfl_cli.data.base import DataLoader
from openfl_cli.data.batches import ArrayBatches
from openfl_cli.data.sharding import resolve_data_path
from src.brats import load_brats


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
        folder, index, count = resolve_data_path(data_path, collaborator_count, brats_folder)
        train, valid = load_brats(folder, index, count, modalities, image_size, valid_fraction, seed)
        self.train_batches = ArrayBatches(*train, self.batch_size, shuffle=True, seed=seed)
        self.valid_batches = ArrayBatches(*valid, self.batch_size)
        self.feature_shape = tuple(train[0].shape[1:])

    def get_train_loader(self, **kwargs: Any) -> ArrayBatches:
        return self.train_batches

    def get_valid_loader(self, **kwargs: Any) -> ArrayBatches:
        return self.valid_batches

    def get_train_data_size(self) -> int:
        return len(self.train_batches.y)

    def get_valid_data_size(self) -> int:
        return len(self.valid_batches.y)

    def get_feature_shape(self) -> tuple[int, ...]:
        return self.feature_shape
