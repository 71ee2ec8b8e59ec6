"""WeightedSumAccumulator's fast paths: the first contribution folded on arrival, reused sum buffers."""

from __future__ import annotations

import numpy as np
import pytest

from openfl_cli.federation.aggregation import ContributionError, WeightedAverage
from openfl_cli.federation.aggregation.average import BLOCK
from openfl_cli.utils import parallel

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


def test_folds_and_division_split_over_threads_give_the_same_mean(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "usable_cores", lambda: 2)  # split even on a one-core machine
    size = 4 * BLOCK + 3  # two ranges, the second one with a partial block
    global_value = RNG.standard_normal(size).astype(np.float32)
    xa, xb, xc = (RNG.standard_normal(size).astype(np.float32) for _ in range(3))
    fn = WeightedAverage()
    fn.begin_round(0, {"w": global_value})
    fn.add("a", "w", xa, 2, may_fold=False)  # staged: folded at commit, over both threads
    fn.add("b", "w", xb, 3, may_fold=False)
    fn.add("c", "w", xc - global_value, 5, is_delta=True, may_fold=False)
    for name in ("a", "b", "c"):
        fn.commit(name)
    expected_c = (xc - global_value).astype(np.float64) + global_value
    total = xa.astype(np.float64) * 2 + xb.astype(np.float64) * 3 + expected_c * 5
    assert np.array_equal(fn.end_round()["w"], (total / 10).astype(np.float32))


def test_staging_arrays_are_kept_without_copy_then_recycled_into_the_new_global_value() -> None:
    fn = WeightedAverage()
    fn.begin_round(0, GLOBAL)
    fn.add("lane", "w", XA, 2)  # folded directly: needs no staging array
    first = fn.staging_array("w")
    assert first is not None and first.shape == GLOBAL["w"].shape and first.dtype == np.float32
    first[...] = XB
    fn.add("b", "w", first, 3, may_fold=False, owned=True)
    first[...] = 0  # owned: kept as is, not copied (so the caller must not touch it; here: proof)
    fn.commit("lane")
    fn.commit("b")  # held back: the close, the next commit or the next staging array folds it
    second = fn.staging_array("w")
    assert second is first  # b folded now: its array serves the next result (no fresh memory)
    second[...] = XB
    fn.add("c", "w", second, 5, may_fold=False, owned=True)
    fn.commit("c")
    new_global = fn.end_round()["w"]
    # the last committed array became the new global value: folded and divided in one pass, in place
    assert np.shares_memory(new_global, second)
    zeros = np.zeros_like(XB)
    assert np.array_equal(new_global, _reference((XA, 2), (zeros, 3), (XB, 5)))


def test_the_fused_last_fold_gives_the_bits_of_fold_then_divide() -> None:
    fn = WeightedAverage()
    fn.begin_round(0, GLOBAL)
    fn.add("a", "w", XA, 7, may_fold=False)
    fn.add("b", "w", XB - GLOBAL["w"], 3, is_delta=True, may_fold=False)
    fn.commit("a")
    fn.commit("b")  # deferred, then fused with the division
    expected = (XA.astype(np.float64) * 7 + ((XB - GLOBAL["w"]).astype(np.float64) + GLOBAL["w"]) * 3) / 10
    accumulator = fn.accumulator("w")
    assert np.array_equal(accumulator.result(), expected.astype(np.float32))
    with pytest.raises(RuntimeError, match="already taken"):
        accumulator.result()  # the deferred array became the result: it cannot be taken twice


def test_spares_do_not_outlive_their_round_and_refused_or_aborted_arrays_are_reused() -> None:
    fn = WeightedAverage()
    fn.begin_round(0, GLOBAL)
    fn.add("lane", "w", XA, 2)
    aborted = fn.staging_array("w")
    assert aborted is not None
    fn.add("b", "w", aborted, 3, may_fold=False, owned=True)
    fn.remove("b")
    assert fn.staging_array("w") is aborted  # the aborted result's array is free again
    fn.commit("lane")
    fn.end_round()
    fn.begin_round(1, GLOBAL)
    assert fn.staging_array("w") is not aborted  # nothing carried over: memory is per round
    assert fn.staging_array("missing") is None
    fn.end_round()


def test_a_late_result_never_lands_in_or_undoes_the_next_round() -> None:
    fn = WeightedAverage()
    fn.begin_round(0, GLOBAL)
    fn.end_round()
    fn.begin_round(1, GLOBAL)
    with pytest.raises(ContributionError, match="round 0 is closed"):
        fn.add("a", "w", XB, 1, round_number=0)  # still streaming its round-0 result
    assert fn.staging_array("w", round_number=0) is None
    fn.add("a", "w", XA, 2, round_number=1)  # its round-1 result (restarted meanwhile)
    fn.remove("a", round_number=0)  # the round-0 stream is aborted at last
    fn.commit("a")
    assert np.array_equal(fn.end_round()["w"], _reference((XA, 2)))
