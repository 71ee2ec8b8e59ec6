"""The DataLoader contract: what a collaborator's data looks like to a task runner."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any


class DataLoader(ABC):
    """Gives a task runner its local shard: batches for training and validation, and their sizes.

    `data_path` is what `plan/data.yaml` holds for this collaborator (a folder, or a shard number
    for the bundled templates). Settings from the plan arrive as keyword arguments.

    Where only the model is needed (`fx plan initialize`, `fx model save`, the aggregator) the runner
    gets a `DeferredDataLoader` that builds this loader only if asked for something: a loader whose
    runner asks `get_feature_shape` while building its model should answer it without reading the data.
    """

    def __init__(
        self, data_path: str, batch_size: int, collaborator_count: int | None = None, **settings: Any
    ):
        self.data_path = str(data_path)
        self.collaborator_name: str | None = None  # set by whoever builds it for a collaborator
        self.batch_size = int(batch_size)
        self.collaborator_count = collaborator_count
        self.settings = settings

    @abstractmethod
    def get_train_loader(self, **kwargs: Any) -> Iterable[Any]:
        """An iterable of training batches (re-iterable: one pass per epoch)."""

    @abstractmethod
    def get_valid_loader(self, **kwargs: Any) -> Iterable[Any]:
        """An iterable of validation batches."""

    @abstractmethod
    def get_train_data_size(self) -> int:
        """Number of training samples: the weight of this collaborator's update."""

    @abstractmethod
    def get_valid_data_size(self) -> int:
        """Number of validation samples: the weight of this collaborator's validation metrics."""

    def get_feature_shape(self) -> tuple[int, ...]:
        """Shape of one input sample (without the batch axis); runners use it to build models."""
        raise NotImplementedError(f"{type(self).__name__} does not report a feature shape")


def shard_index(data_path: str, collaborator_count: int | None) -> tuple[int, int]:
    """Read a 1-based shard number from `data_path` and return (0-based index, shard count).

    The bundled templates use the collaborator's data path as its shard number, as OpenFL's do.
    """
    from openfl_cli.errors import UsageError

    count = int(collaborator_count or 1)
    try:
        number = int(str(data_path).strip())
    except ValueError:
        raise UsageError(
            f"data path {data_path!r}: expected a shard number from 1 to {count} for this data set"
        ) from None
    if not 1 <= number <= count:
        raise UsageError(f"data path {data_path!r}: shard number must be from 1 to {count}")
    return number - 1, count
