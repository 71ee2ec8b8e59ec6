"""openfl_cli.data.sharding: data paths, and shards that are disjoint and cover the data set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from openfl_cli.data.sharding import resolve_data_path, shard_arrays, shuffled_shard, split_valid
from openfl_cli.errors import UsageError


@pytest.mark.parametrize(("n", "count"), [(10, 1), (10, 3), (7, 7), (5, 8), (1797, 4)])
def test_shard_arrays_are_disjoint_and_cover(n: int, count: int) -> None:
    rows, labels = np.arange(n), np.arange(n) % 10
    shards = [shard_arrays((rows, labels), i, count) for i in range(count)]
    together = np.concatenate([r for r, _ in shards])
    assert sorted(together.tolist()) == list(range(n))  # every row once
    for r, y in shards:
        np.testing.assert_array_equal(y, r % 10)  # rows and labels stay paired
        assert len(r) in (n // count, -(-n // count))  # balanced


def test_shard_arrays_deals_each_array_on_its_own() -> None:
    train, test = shard_arrays((np.arange(10), np.arange(4)), 1, 2)
    assert train.tolist() == [1, 3, 5, 7, 9] and test.tolist() == [1, 3]


@pytest.mark.parametrize("count", [1, 2, 5])
def test_shuffled_shards_are_disjoint_cover_and_repeat(count: int) -> None:
    shards = [shuffled_shard(23, i, count, seed=7) for i in range(count)]
    assert sorted(np.concatenate(shards).tolist()) == list(range(23))
    assert all(np.array_equal(s, shuffled_shard(23, i, count, seed=7)) for i, s in enumerate(shards))
    if count == 1:
        assert shards[0].tolist() != list(range(23))  # shuffled


@pytest.mark.parametrize(("index", "count"), [(-1, 2), (2, 2), (0, 0)])
def test_shard_index_out_of_range_is_a_programming_error(index: int, count: int) -> None:
    with pytest.raises(ValueError):
        shard_arrays((np.arange(3),), index, count)
    with pytest.raises(ValueError):
        shuffled_shard(3, index, count)


def test_split_valid_keeps_the_last_fraction() -> None:
    train, valid = split_valid(np.arange(10), 0.25)
    assert train.tolist() == list(range(8)) and valid.tolist() == [8, 9]
    assert [len(p) for p in split_valid(np.arange(10), 0.0)] == [10, 0]
    with pytest.raises(ValueError):
        split_valid(np.arange(10), 1.0)


def test_a_shard_number_reads_the_shared_folder(tmp_path: Path) -> None:
    assert resolve_data_path("2", 3, tmp_path / "mnist") == (tmp_path / "mnist", 1, 3)
    assert resolve_data_path(" 1 ", None, "data/x") == (Path("data/x"), 0, 1)


def test_an_existing_folder_is_used_whole(tmp_path: Path) -> None:
    (tmp_path / "7").mkdir()
    assert resolve_data_path(str(tmp_path), 4, "data/x") == (tmp_path, 0, 1)
    assert resolve_data_path(tmp_path / "7", 4, "data/x") == (tmp_path / "7", 0, 1)  # a folder wins


@pytest.mark.parametrize(
    ("data_path", "count", "message"),
    [
        ("3", 2, "shard number must be from 1 to 2"),
        ("0", 2, "shard number must be from 1 to 2"),
        ("-1", 2, "no such folder, and not a shard number from 1 to 2"),
        ("data/col1", 2, "no such folder"),
        ("col1", None, "not a shard number from 1 to 1"),
    ],
)
def test_bad_data_paths_are_usage_errors_naming_the_path(data_path: str, count: int, message: str) -> None:
    with pytest.raises(UsageError, match=message) as caught:
        resolve_data_path(data_path, count, "data/x")
    assert repr(data_path) in str(caught.value)
