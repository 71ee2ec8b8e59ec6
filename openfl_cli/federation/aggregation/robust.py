"""Coordinate-wise Median and TrimmedMean: they need every contribution at once, so contributions are
appended to a temporary file on disk and read back through np.memmap in column blocks, keeping RAM
bounded whatever the number of collaborators. Weights are not used beyond "zero weight does not count"
(robust statistics ignore sample counts, as in OpenFL)."""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from openfl_cli.federation.aggregation._kernels import (
    ROBUST_BLOCK_BYTES,
    check_trim_ratio,
    median_rows,
    reduce_columns,
    trimmed_mean_rows,
)
from openfl_cli.federation.aggregation.base import Contribution, TensorAccumulator
from openfl_cli.federation.aggregation.function import AggregationFunction
from openfl_cli.tensors.codec import array_bytes


class StackedAccumulator(TensorAccumulator):
    """Appends each contribution as one row of a file; `_reduce` sees blocks of (rows, columns)."""

    def __init__(
        self, name: str, global_value: np.ndarray, folder: Path, block_bytes: int = ROBUST_BLOCK_BYTES
    ) -> None:
        super().__init__(name, global_value)
        self._size = int(global_value.size)
        self._block_bytes = block_bytes
        # Opened per write, not kept open: a model may have thousands of tensors (file descriptors).
        fd, path = tempfile.mkstemp(prefix="tensor-", suffix=".rows", dir=folder)
        os.close(fd)
        self._path = Path(path)
        self._rows: dict[str, int] = {}
        self._row_count = 0

    def _stage(self, contribution: Contribution) -> None:
        array = contribution.array
        value = self._full_value(array, contribution.is_delta) if contribution.is_delta else array
        with self._path.open("r+b") as handle:
            handle.seek(self._row_count * self._size * self.global_value.dtype.itemsize)
            handle.write(array_bytes(value))
        self._rows[contribution.contributor] = self._row_count
        self._row_count += 1

    def _commit(self, contributor: str, weight: float) -> None:
        """Rows are already on disk; committing only changes the bookkeeping in the base class."""

    def _drop(self, contributor: str) -> None:
        # The row stays in the file (rewriting would cost more than the disk space); it is skipped.
        self._rows.pop(contributor, None)

    def _result(self, weights: Mapping[str, float]) -> np.ndarray:
        rows = sorted(self._rows[name] for name in weights)
        if self._size == 0:
            return np.empty(0, dtype=np.float64)  # a memmap cannot map an empty file
        dtype = self.global_value.dtype.newbyteorder("<")
        stack = np.memmap(self._path, dtype=dtype, mode="r", shape=(self._row_count, self._size))

        def read(start: int, stop: int) -> np.ndarray:
            return stack[rows, start:stop]

        return reduce_columns(read, len(rows), self._size, self._reduce, self._block_bytes)

    def _reduce(self, block: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _release(self) -> None:
        self._path.unlink(missing_ok=True)
        self._rows.clear()


class _MedianAccumulator(StackedAccumulator):
    def _reduce(self, block: np.ndarray) -> np.ndarray:
        return median_rows(block)


class _TrimmedMeanAccumulator(StackedAccumulator):
    def __init__(self, name: str, global_value: np.ndarray, folder: Path, trim_ratio: float) -> None:
        super().__init__(name, global_value, folder)
        self._trim_ratio = trim_ratio

    def _reduce(self, block: np.ndarray) -> np.ndarray:
        return trimmed_mean_rows(block, self._trim_ratio)


class _StackedFunction(AggregationFunction):
    """Owns the per-round temporary folder that holds the contribution files."""

    def __init__(self, tmp_dir: str | None = None) -> None:
        super().__init__()
        self._tmp_parent = tmp_dir
        self._folder: Path | None = None
        self._cleanup: weakref.finalize | None = None

    def _round_folder(self) -> Path:
        if self._folder is None:
            if self._tmp_parent is not None:
                Path(self._tmp_parent).mkdir(parents=True, exist_ok=True)
            self._folder = Path(tempfile.mkdtemp(prefix="fx-aggregation-", dir=self._tmp_parent))
            # Removes the folder even if the function is dropped mid-round.
            self._cleanup = weakref.finalize(self, shutil.rmtree, self._folder, True)
        return self._folder

    def _release_round(self) -> None:
        self._folder = None
        if self._cleanup is not None:
            self._cleanup()
            self._cleanup = None


class Median(_StackedFunction):
    """Coordinate-wise median of the contributions (robust to a minority of outliers)."""

    def _float_accumulator(self, name: str, global_value: np.ndarray) -> TensorAccumulator:
        return _MedianAccumulator(name, global_value, self._round_folder())


class TrimmedMean(_StackedFunction):
    """Coordinate-wise mean after dropping floor(trim_ratio * n) lowest and highest values."""

    def __init__(self, trim_ratio: float = 0.1, tmp_dir: str | None = None) -> None:
        ratio = check_trim_ratio(trim_ratio)
        super().__init__(tmp_dir)
        self.trim_ratio = ratio

    def _float_accumulator(self, name: str, global_value: np.ndarray) -> TensorAccumulator:
        return _TrimmedMeanAccumulator(name, global_value, self._round_folder(), self.trim_ratio)
