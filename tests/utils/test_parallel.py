"""Elementwise work split over threads: ranges cover everything once, errors surface, results match."""

from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest

from openfl_cli.utils import parallel
from openfl_cli.utils.parallel import for_ranges, split_ranges


@pytest.mark.parametrize(
    ("size", "parts", "align"), [(10, 3, 1), (1000, 2, 64), (5, 8, 1), (65536 * 3 + 7, 2, 65536)]
)
def test_split_ranges_cover_the_size_once_with_aligned_bounds(size: int, parts: int, align: int) -> None:
    ranges = split_ranges(size, parts, align)
    assert ranges[0][0] == 0 and ranges[-1][1] == size
    assert all(stop == start for (_, stop), (start, _) in itertools.pairwise(ranges))
    assert all(start < stop for start, stop in ranges)
    assert all(stop % align == 0 for _, stop in ranges[:-1])
    assert len(ranges) <= parts


def test_split_ranges_of_nothing_is_empty() -> None:
    assert split_ranges(0, 4) == []


def test_large_work_runs_on_two_threads_and_touches_every_element(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "usable_cores", lambda: 2)
    data = np.zeros(1 << 20)
    threads: set[str] = set()

    def work(start: int, stop: int) -> None:
        threads.add(threading.current_thread().name)
        data[start:stop] += 1

    for_ranges(data.size, work, min_part=1 << 16)
    assert np.all(data == 1)
    assert len(threads) == 2


def test_small_work_stays_on_the_calling_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "usable_cores", lambda: 4)
    calls: list[tuple[int, int, str]] = []
    for_ranges(100, lambda a, b: calls.append((a, b, threading.current_thread().name)), min_part=1000)
    assert calls == [(0, 100, threading.current_thread().name)]


def test_an_error_in_a_helper_thread_reaches_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "usable_cores", lambda: 2)

    def work(start: int, stop: int) -> None:
        if start > 0:
            raise ValueError("second half failed")

    with pytest.raises(ValueError, match="second half failed"):
        for_ranges(1 << 20, work, min_part=1 << 16)
