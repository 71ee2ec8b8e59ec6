"""The arithmetic of aggregation, shared by the streaming accumulators and the pure functions.

Each operation is defined once here, so that a streaming round and a pure call over the same inputs
(in the same order) give the same bits: sums in float64, one rounding into the tensor's dtype at the
end, robust statistics over the same column blocks.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable

import numpy as np

from openfl_cli.tensors.codec import array_bytes

BLOCK = 1 << 16  # elements folded per step: 512 KiB of float64 scratch
# RAM for one block of columns across all contributions, in float64 (robust statistics).
ROBUST_BLOCK_BYTES = 32 * 1024 * 1024


# --- weighted average ---------------------------------------------------------------------------


def weighted_term(
    values: np.ndarray, base: np.ndarray | None, weight: float, start: int, stop: int, out: np.ndarray
) -> None:
    """out (float64) = weight * (values [+ base]) over [start, stop): one contribution's weighted term."""
    if base is None:
        np.multiply(values[start:stop], weight, out=out, dtype=np.float64)
    else:
        np.add(values[start:stop], base[start:stop], out=out, dtype=np.float64)
        np.multiply(out, weight, out=out)


def fold_range(
    total: np.ndarray,
    values: np.ndarray,
    base: np.ndarray | None,
    weight: float,
    first: bool,
    begin: int,
    end: int,
) -> None:
    """total[begin:end] (flat float64) = [total +] weight * (values [+ base]), block by block: a small
    scratch stays in cache instead of a tensor-sized temporary per pass."""
    scratch = None if first else np.empty(min(BLOCK, end - begin), dtype=np.float64)
    for start in range(begin, end, BLOCK):
        stop = min(start + BLOCK, end)
        term = total[start:stop] if scratch is None else scratch[: stop - start]
        weighted_term(values, base, weight, start, stop, term)
        if scratch is not None:
            np.add(total[start:stop], term, out=total[start:stop])


def divide_range(total: np.ndarray, weight_sum: float, out: np.ndarray, start: int, stop: int) -> None:
    """out[start:stop] = total / weight_sum: divided in float64, rounded once into out's dtype."""
    np.divide(total[start:stop], weight_sum, out=out[start:stop], casting="same_kind")


def weight_sum(weights: Iterable[float]) -> float:
    """The exactly rounded sum, so that the order in which weights arrive does not matter."""
    return math.fsum(weights)


# --- robust statistics --------------------------------------------------------------------------


def reduce_columns(
    read: Callable[[int, int], np.ndarray],
    rows: int,
    size: int,
    reduce: Callable[[np.ndarray], np.ndarray],
    block_bytes: int = ROBUST_BLOCK_BYTES,
) -> np.ndarray:
    """`reduce` over blocks of columns: `read(start, stop)` gives the (rows, stop - start) block of the
    stacked contributions; the result is flat float64. The block layout is fixed here (C-contiguous
    float64), since a reduction's rounding may depend on it."""
    out = np.empty(size, dtype=np.float64)
    step = max(1, block_bytes // (8 * max(1, rows)))
    for start in range(0, size, step):
        stop = min(start + step, size)
        out[start:stop] = reduce(np.ascontiguousarray(read(start, stop), dtype=np.float64))
    return out


def median_rows(block: np.ndarray) -> np.ndarray:
    return np.median(block, axis=0)


def trimmed_mean_rows(block: np.ndarray, trim_ratio: float) -> np.ndarray:
    """Mean of each column after dropping floor(trim_ratio * rows) lowest and highest values."""
    count = block.shape[0]
    cut = math.floor(trim_ratio * count)
    if cut == 0:
        return block.mean(axis=0)
    ordered = np.sort(block, axis=0)
    return ordered[cut : count - cut].mean(axis=0)


def check_trim_ratio(trim_ratio: float) -> float:
    if isinstance(trim_ratio, bool) or not isinstance(trim_ratio, (int, float)):
        raise ValueError(f"trim_ratio must be a number in [0, 0.5), got {trim_ratio!r}")
    if not 0 <= trim_ratio < 0.5:
        raise ValueError(f"trim_ratio must be in [0, 0.5), got {trim_ratio!r}")
    return float(trim_ratio)


# --- non-float tensors and results --------------------------------------------------------------


def value_digest(array: np.ndarray) -> str:
    """Equal digests mean equal bytes: integer and bool tensors are compared, never averaged."""
    return hashlib.blake2b(array_bytes(array), digest_size=16).hexdigest()


def as_tensor(value: np.ndarray, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    """An aggregate in its tensor's dtype and shape (no copy when it already is)."""
    return np.asarray(value).astype(dtype, copy=False).reshape(shape)
