"""WeightedSumAccumulator's fast paths: the first contribution folded on arrival, reused sum buffers."""

from __future__ import annotations

import numpy as np

from openfl_cli.federation.aggregation import WeightedAverage
from openfl_cli.federation.aggregation.average import BLOCK

RNG = np.random.default_rng(7)
SIZE = 2 * BLOCK + 5  # spans several fold blocks and a partial one
GLOBAL = {"w": RNG.standard_normal(SIZE).astype(np.float32)}
XA, XB = (RNG.standard_normal(SIZE).astype(np.float32) for _ in range(2))


def _reference(*terms: tuple[np.ndarray, float]) -> np.ndarray:
    total = sum(x.astype(np.float64) * w for x, w in terms)
    return (total / sum(w for _, w in terms)).astype(np.float32)


def test_an_aborted_first_contribution_leaves_no_trace() -> None:
    fn = WeightedAverage()
    fn.begin_round(0, GLOBAL)
    fn.add("a", "w", XA, 2)
    fn.add("b", "w", XB, 3)
    fn.commit("b")
    fn.remove("a")
    assert np.array_equal(fn.end_round()["w"], _reference((XB, 3)))


def test_interleaved_results_and_reused_buffers_give_the_weighted_mean() -> None:
    fn = WeightedAverage()
    for round_number in range(3):  # rounds 1 and 2 reuse the sum buffers of round 0
        fn.begin_round(round_number, GLOBAL)
        fn.add("a", "w", XA, 2)
        fn.add("b", "w", XB, 3)
        fn.commit("b")
        fn.commit("a")
        assert np.array_equal(fn.end_round()["w"], _reference((XA, 2), (XB, 3)))


def test_delta_and_zero_weight_contributions() -> None:
    fn = WeightedAverage()
    fn.begin_round(0, GLOBAL)
    fn.add("zero", "w", XB, 0)
    fn.add("a", "w", XA, 4, is_delta=True)
    fn.commit("zero")
    fn.commit("a")
    expected = (XA.astype(np.float64) + GLOBAL["w"]).astype(np.float32)
    assert np.array_equal(fn.end_round()["w"], expected)
