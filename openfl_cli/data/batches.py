"""Re-iterable mini-batches over in-memory NumPy arrays, for the data loaders of the bundled templates."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np


class ArrayBatches:
    """Batches of (x, y) rows, reshuffled on each pass when `shuffle` (by a generator seeded once).

    `transform`, when given, maps each batch of `x` (for example uint8 pixels to float32), so a data set
    can stay compact in memory and be converted one batch at a time.
    """

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        transform: Callable[[np.ndarray], Any] | None = None,
    ) -> None:
        if len(x) != len(y):
            raise ValueError(f"{len(x)} inputs but {len(y)} targets")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        self.x, self.y, self.batch_size, self.shuffle = x, y, int(batch_size), shuffle
        self.transform = transform
        self.rng = np.random.default_rng(seed)

    def __iter__(self) -> Iterator[tuple[Any, np.ndarray]]:
        n = len(self.y)
        order = self.rng.permutation(n) if self.shuffle else np.arange(n)
        for start in range(0, n, self.batch_size):
            index = order[start : start + self.batch_size]
            x = self.x[index]
            yield (self.transform(x) if self.transform else x), self.y[index]

    def __len__(self) -> int:
        """Number of batches per pass (the last one may be short)."""
        return -(-len(self.y) // self.batch_size)
