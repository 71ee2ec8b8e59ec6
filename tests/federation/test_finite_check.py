"""The aggregator's finiteness check on received tensors (`all_finite`), including the cases where its
one-pass sum overflows from finite values and the element-wise fallback decides."""

from __future__ import annotations

import numpy as np
import pytest

from openfl_cli.federation.aggregator import sink
from openfl_cli.federation.aggregator.sink import all_finite


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.complex64])
def test_finite_arrays_pass(dtype: type) -> None:
    assert all_finite(np.random.default_rng(0).standard_normal(1000).astype(dtype))
    assert all_finite(np.zeros((0, 3), dtype))
    assert all_finite(np.array(1.5, dtype))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [0, 499, 999])
def test_one_bad_element_anywhere_is_found(bad: float, where: int) -> None:
    values = np.ones(1000, np.float32)
    values[where] = bad
    assert not all_finite(values)


def test_opposite_infinities_are_found() -> None:
    assert not all_finite(np.array([np.inf, -np.inf, 1.0], np.float32))


def test_a_bad_imaginary_part_is_found() -> None:
    assert not all_finite(np.array([1 + 1j, complex(0.0, np.nan)], np.complex64))


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_huge_finite_values_whose_sum_overflows_pass(dtype: type) -> None:
    values = np.full(10, np.finfo(dtype).max, dtype)
    with np.errstate(over="ignore"):
        assert not np.isfinite(values.sum())  # the fast path cannot decide ...
    assert all_finite(values)  # ... the element-wise one does


def test_the_element_wise_check_looks_at_every_block(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sink, "FINITE_BLOCK", 7)
    values = np.full(50, np.finfo(np.float32).max, np.float32)  # the sum overflows
    assert all_finite(values)
    values[-1] = np.nan
    assert not all_finite(values)
