"""A data loader without data: it only knows the shape of one input sample.

`fx plan initialize --input-shape` builds the initial model with it, so the aggregator's machine needs
none of the collaborators' data (which it usually must not hold)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from openfl_cli.data.base import DataLoader
from openfl_cli.errors import UsageError


class ShapeOnlyDataLoader(DataLoader):
    def __init__(self, feature_shape: Sequence[int], batch_size: int = 1) -> None:
        super().__init__("", batch_size)
        self.feature_shape = tuple(int(size) for size in feature_shape)

    def get_train_loader(self, **kwargs: Any) -> list[Any]:
        return []

    def get_valid_loader(self, **kwargs: Any) -> list[Any]:
        return []

    def get_train_data_size(self) -> int:
        return 0

    def get_valid_data_size(self) -> int:
        return 0

    def get_feature_shape(self) -> tuple[int, ...]:
        return self.feature_shape


def parse_shape(text: str) -> tuple[int, ...]:
    """'[1,28,28]', '1,28,28' or '1 28 28' as a tuple of positive sizes; UsageError otherwise."""
    parts = text.strip().removeprefix("[").removesuffix("]").replace(",", " ").split()
    try:
        shape = tuple(int(part) for part in parts)
    except ValueError:
        shape = ()
    if not shape or any(size < 1 for size in shape):
        raise UsageError(f"--input-shape {text!r}: expected positive sizes such as [1,28,28] or 1,28,28")
    return shape
