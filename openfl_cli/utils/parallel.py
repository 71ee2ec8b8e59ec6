"""Elementwise NumPy work split over the machine's cores.

NumPy releases the GIL inside its loops, so threads that each run a range of a large array work at the
same time. Used for the aggregator's whole-tensor folds and divisions, which a commit, the next staged
result or the round's close waits on; the fold of a tensor as it streams in stays on its stream's thread.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait

# Below this many elements per part, handing work to a thread costs more than it saves.
MIN_PART_ELEMENTS = 1 << 17

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def split_ranges(size: int, parts: int, align: int = 1) -> list[tuple[int, int]]:
    """[start, stop) ranges covering 0..size in `parts` nearly equal pieces, inner bounds multiples of
    `align` (empty ranges dropped)."""
    if size <= 0:
        return []
    parts = max(1, parts)
    step = -(-size // parts)
    step = -(-step // align) * align
    return [(start, min(start + step, size)) for start in range(0, size, step)]


def for_ranges(
    size: int,
    work: Callable[[int, int], None],
    *,
    align: int = 1,
    min_part: int = MIN_PART_ELEMENTS,
) -> None:
    """Run `work(start, stop)` over ranges covering 0..size, in parallel when the size is worth it.
    `work` must touch only its own range. The caller's thread runs one range; errors are re-raised."""
    parts = min(usable_cores(), size // max(1, min_part))
    if parts <= 1:
        if size > 0:
            work(0, size)
        return
    ranges = split_ranges(size, parts, align)
    pool = _shared_pool()
    futures = [pool.submit(work, start, stop) for start, stop in ranges[1:]]
    try:
        work(*ranges[0])
    finally:
        wait(futures)  # never leave a thread writing into the caller's arrays
    for future in futures:
        future.result()


def _shared_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=max(1, usable_cores() - 1), thread_name_prefix="fx-numpy")
        return _pool
