"""A data loader that is built only when something asks it for data.

`fx plan initialize`, `fx model save` and the aggregator build a task runner for its model alone: the
weights' names, shapes and initial values. Most runners never touch their data loader while building
the model (a PyTorch `build_model` usually hard-codes its layers; Keras asks only `get_feature_shape`),
so handing them this stand-in spares reading, downloading or faking a data set that the machine may
not even hold. The first call that needs the real loader builds it, and every later call goes to it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from openfl_cli.data.base import DataLoader


class DeferredDataLoader(DataLoader):
    """Stands for the loader `build()` returns, and builds it on first use (once, thread-safe)."""

    def __init__(self, build: Callable[[], DataLoader]) -> None:
        # no super().__init__: its attributes (data_path, batch_size, ...) are the real loader's
        self._build = build
        self._lock = threading.Lock()
        self._loader: DataLoader | None = None

    @property
    def built(self) -> bool:
        """Whether the real loader exists (tests and benchmarks check that nothing built it)."""
        return self._loader is not None

    def real(self) -> DataLoader:
        with self._lock:
            if self._loader is None:
                self._loader = self._build()
            return self._loader

    def get_train_loader(self, **kwargs: Any) -> Iterable[Any]:
        return self.real().get_train_loader(**kwargs)

    def get_valid_loader(self, **kwargs: Any) -> Iterable[Any]:
        return self.real().get_valid_loader(**kwargs)

    def get_train_data_size(self) -> int:
        return self.real().get_train_data_size()

    def get_valid_data_size(self) -> int:
        return self.real().get_valid_data_size()

    def get_feature_shape(self) -> tuple[int, ...]:
        return self.real().get_feature_shape()

    def __getattr__(self, name: str) -> Any:
        # anything else a runner reads (data_path, batch_size, a template's own attributes)
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.real(), name)
