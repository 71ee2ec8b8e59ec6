"""Dealing one data set out to collaborators: which folder, which shard, which rows.

The bundled templates read `plan/data.yaml`'s data path either as a shard number (1..collaborator_count)
of a data set every node holds whole, or as a folder holding this collaborator's own data (used whole).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from openfl_cli.data.base import shard_index


def resolve_data_path(
    data_path: str | Path, collaborator_count: int | None, shared_folder: str | Path
) -> tuple[Path, int, int]:
    """(folder, 0-based shard index, shard count) for a collaborator's data path.

    An existing folder is this collaborator's own data: (that folder, 0, 1). Anything else must be a
    shard number of the data set in `shared_folder`; a path to a missing folder is a UsageError naming it.
    """
    path = Path(str(data_path).strip())
    if path.is_dir():
        return path, 0, 1
    if not str(path).isdigit():
        from openfl_cli.errors import UsageError

        raise UsageError(
            f"data path {str(data_path)!r}: no such folder, and not a shard number from 1 to "
            f"{int(collaborator_count or 1)}"
        )
    index, count = shard_index(str(data_path), collaborator_count)
    return Path(shared_folder), index, count


def shard_arrays(arrays: Sequence[np.ndarray], index: int, count: int) -> tuple[np.ndarray, ...]:
    """Shard `index` of `count` of each array: every count-th row, so shards keep the class balance.

    Shards are disjoint and together cover every row; arrays of different lengths (train and test)
    are each dealt on their own. Each shard is its own writable copy: the arrays given may be a data
    set that a simulation shares, read-only, between many loaders.
    """
    _check(index, count)
    return tuple(array[index::count].copy() for array in arrays)


def shuffled_shard(n_rows: int, index: int, count: int, seed: int = 0) -> np.ndarray:
    """Row numbers of shard `index` of `count` after one shuffle by `seed`: the same on every node."""
    _check(index, count)
    return np.random.default_rng(seed).permutation(n_rows)[index::count]


def split_valid(rows: np.ndarray, valid_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(train, valid) rows: the last `valid_fraction` of `rows` (rounded) validates."""
    if not 0.0 <= valid_fraction < 1.0:
        raise ValueError(f"valid_fraction must be in [0, 1), not {valid_fraction}")
    n_train = len(rows) - round(len(rows) * valid_fraction)
    return rows[:n_train], rows[n_train:]


def _check(index: int, count: int) -> None:
    if not 0 <= index < count:
        raise ValueError(f"shard index {index} is not in 0..{count - 1}")
