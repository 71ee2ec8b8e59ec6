"""openfl_cli.data.batches.ArrayBatches: every row once per pass, reshuffled, transformed per batch."""

from __future__ import annotations

import numpy as np
import pytest

from openfl_cli.data.batches import ArrayBatches


def test_batches_cover_each_row_once_and_keep_pairs() -> None:
    x, y = np.arange(10) * 10, np.arange(10)
    batches = ArrayBatches(x, y, 4, shuffle=True, seed=1)
    assert len(batches) == 3
    first = list(batches)
    assert [len(b) for _, b in first] == [4, 4, 2]
    assert sorted(np.concatenate([b for _, b in first]).tolist()) == list(range(10))
    assert all(np.array_equal(xb, yb * 10) for xb, yb in first)
    second = np.concatenate([b for _, b in batches])
    assert second.tolist() != np.concatenate([b for _, b in first]).tolist()  # a new order each pass


def test_unshuffled_batches_keep_order_and_transform_x() -> None:
    x = np.full((5, 2), 255, np.uint8)
    batches = ArrayBatches(x, np.arange(5), 2, transform=lambda b: b.astype(np.float32) / 255.0)
    out = list(batches)
    assert [yb.tolist() for _, yb in out] == [[0, 1], [2, 3], [4]]
    assert out[0][0].dtype == np.float32 and float(out[0][0].max()) == 1.0
    assert x.dtype == np.uint8  # the stored data is untouched


def test_mismatched_lengths_and_bad_batch_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="3 inputs but 2 targets"):
        ArrayBatches(np.zeros(3), np.zeros(2), 1)
    with pytest.raises(ValueError, match="batch_size"):
        ArrayBatches(np.zeros(3), np.zeros(3), 0)
