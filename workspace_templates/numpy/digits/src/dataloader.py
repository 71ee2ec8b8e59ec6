"""The handwritten digits of scikit-learn (1797 images of 8x8 pixels), one shard per collaborator."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

import numpy as np

from openfl_cli.data.base import DataLoader, shard_index

Batch = tuple[np.ndarray, np.ndarray]


@dataclass
class Part:
    x: np.ndarray  # float32 pixels scaled to [0, 1], one row of 64 per image
    y: np.ndarray  # int64 labels 0..9
    rows: np.ndarray  # positions in load_digits(), to check the split


class DigitsDataLoader(DataLoader):
    """Shard `data_path` (a number from 1 to `collaborator_count`) of the digits, split train/validation.

    The data set is shuffled once with `seed`, dealt round-robin into shards, and each shard keeps its
    last `valid_fraction` for validation: the same shards on every node and every run.
    """

    def __init__(
        self,
        data_path: str,
        batch_size: int,
        collaborator_count: int | None = None,
        valid_fraction: float = 0.2,
        seed: int = 0,
        **settings: Any,
    ) -> None:
        super().__init__(data_path, batch_size, collaborator_count, **settings)
        self.shard, self.shard_count = shard_index(data_path, collaborator_count)
        self.valid_fraction = valid_fraction
        self.seed = seed

    @cached_property
    def parts(self) -> dict[str, Part]:
        """Loaded on first use, so building the loader (as `fx plan initialize` does) stays cheap."""
        features, labels = _digits()
        rows = np.random.default_rng(self.seed).permutation(len(labels))[self.shard :: self.shard_count]
        n_valid = round(len(rows) * self.valid_fraction)
        train, valid = rows[: len(rows) - n_valid], rows[len(rows) - n_valid :]
        return {
            "train": Part(features[train], labels[train], train),
            "valid": Part(features[valid], labels[valid], valid),
        }

    def get_train_loader(self, seed: int | None = None, **kwargs: Any) -> list[Batch]:
        """Training batches, shuffled by `seed` (the round number) and the shard when one is given."""
        part = self.parts["train"]
        order = np.arange(len(part.y))
        if seed is not None:
            order = np.random.default_rng([seed, self.shard]).permutation(order)
        return list(self._batches(part.x[order], part.y[order]))

    def get_valid_loader(self, **kwargs: Any) -> list[Batch]:
        return list(self._batches(self.parts["valid"].x, self.parts["valid"].y))

    def get_train_data_size(self) -> int:
        return len(self.parts["train"].y)

    def get_valid_data_size(self) -> int:
        return len(self.parts["valid"].y)

    def get_feature_shape(self) -> tuple[int, ...]:
        return (64,)

    def _batches(self, x: np.ndarray, y: np.ndarray) -> Iterator[Batch]:
        for start in range(0, len(y), self.batch_size):
            yield x[start : start + self.batch_size], y[start : start + self.batch_size]


@cache
def _digits() -> tuple[np.ndarray, np.ndarray]:
    """The whole data set, read once per process (a simulation builds many loaders), read-only."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    features = (digits.data / 16.0).astype(np.float32)  # pixels are 0..16
    labels = digits.target.astype(np.int64)
    features.setflags(write=False)
    labels.setflags(write=False)
    return features, labels
