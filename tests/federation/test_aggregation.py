from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from openfl_cli.federation.aggregation import (
    AggregationFunction,
    ContributionError,
    FedAdam,
    FedAvgM,
    Median,
    TrimmedMean,
    WeightedAverage,
    weighted_metrics,
)

ALL = [WeightedAverage, Median, TrimmedMean, FedAvgM, FedAdam]


def run_round(
    fn: AggregationFunction, globals_: dict, contributions: list[tuple[str, dict, float]], round_number=1
):
    fn.begin_round(round_number, globals_)
    for who, tensors, weight in contributions:
        for name, array in tensors.items():
            fn.accumulator(name).add(who, array, weight)
        fn.commit(who)
    return fn.end_round()


def test_weighted_average_known_values() -> None:
    g = {"w": np.zeros((2, 2), np.float32)}
    out = run_round(
        WeightedAverage(),
        g,
        [
            ("a", {"w": np.full((2, 2), 1.0, np.float32)}, 10),
            ("b", {"w": np.full((2, 2), 4.0, np.float32)}, 20),
        ],
    )
    assert out["w"].dtype == np.float32 and out["w"].shape == (2, 2)
    np.testing.assert_allclose(out["w"], 3.0)


def test_remove_undoes_an_uncommitted_result() -> None:
    fn = WeightedAverage()
    g = {"w": np.zeros(3, np.float64)}
    fn.begin_round(1, g)
    fn.add("a", "w", np.ones(3), 1)
    fn.commit("a")
    fn.add("b", "w", np.full(3, 100.0), 5)
    fn.remove("b")
    fn.remove("never-sent")  # an abort before the first tensor is fine
    assert fn.contributors() == {"a"}
    with pytest.raises(ContributionError, match="committed"):
        fn.remove("a")
    np.testing.assert_allclose(fn.end_round()["w"], 1.0)


def test_buffer_reuse_after_add_does_not_change_the_result() -> None:
    for cls in ALL:
        fn = cls()
        fn.begin_round(1, {"w": np.zeros(4, np.float32)})
        buffer = np.full(4, 2.0, np.float32)
        fn.add("a", "w", buffer, 1)
        buffer[:] = 99.0  # the transport reuses its buffer
        fn.commit("a")
        if cls in (WeightedAverage, Median, TrimmedMean):
            np.testing.assert_allclose(fn.end_round()["w"], 2.0)
        else:
            fn.abort_round()


def test_zero_total_weight_keeps_the_global_tensor() -> None:
    g = {"w": np.full(3, 7.0, np.float32)}
    for cls in ALL:
        out = run_round(cls(), g, [("a", {"w": np.zeros(3, np.float32)}, 0)])
        np.testing.assert_array_equal(out["w"], g["w"])


def test_tensor_without_contributions_keeps_global_and_nothing_is_stepped() -> None:
    fn = FedAvgM()
    g = {"w": np.ones(2, np.float32), "untouched": np.arange(3, dtype=np.float32)}
    out = run_round(fn, g, [("a", {"w": np.zeros(2, np.float32)}, 1)])
    assert out["untouched"] is g["untouched"]
    assert set(fn.state_dict()) == {"velocity/w"}


@pytest.mark.parametrize("bad", [np.zeros(4, np.float32), np.zeros(3, np.float64), [0.0, 0.0, 0.0]])
def test_wrong_shape_dtype_or_type_is_refused(bad) -> None:
    fn = WeightedAverage()
    fn.begin_round(1, {"w": np.zeros(3, np.float32)})
    with pytest.raises(ContributionError):
        fn.add("a", "w", bad, 1)


def test_duplicate_contribution_and_bad_weight_are_refused() -> None:
    fn = Median()
    fn.begin_round(1, {"w": np.zeros(3, np.float32)})
    fn.add("a", "w", np.zeros(3, np.float32), 1)
    with pytest.raises(ContributionError, match="already"):
        fn.add("a", "w", np.zeros(3, np.float32), 1)
    for weight in (-1, float("nan"), float("inf"), True):
        with pytest.raises(ContributionError, match="weight"):
            fn.add("b", "w", np.zeros(3, np.float32), weight)
    with pytest.raises(ContributionError, match="not part"):
        fn.accumulator("nope")
    fn.close()


def test_accumulator_needs_an_open_round() -> None:
    with pytest.raises(RuntimeError, match="begin_round"):
        WeightedAverage().accumulator("w")


def test_integer_tensors_take_agreed_value_else_keep_global() -> None:
    g = {"steps": np.array(5, np.int64), "mask": np.array([True, False])}
    same = run_round(
        WeightedAverage(),
        g,
        [
            ("a", {"steps": np.array(9), "mask": np.array([True, True])}, 1),
            ("b", {"steps": np.array(9), "mask": np.array([False, True])}, 3),
        ],
    )
    assert same["steps"] == 9 and same["steps"].dtype == np.int64
    np.testing.assert_array_equal(same["mask"], g["mask"])  # disagreement: global kept
    assert same["mask"].dtype == np.bool_


@pytest.mark.parametrize("cls", ALL)
def test_dtype_and_shape_preserved(cls) -> None:
    g = {
        "h": np.zeros((2, 3), np.float16),
        "d": np.zeros((1, 2, 1), np.float64),
        "s": np.float32(0).reshape(()),
    }
    contributions = [(c, {k: np.full_like(v, i + 1) for k, v in g.items()}, 1) for i, c in enumerate("abc")]
    out = run_round(cls(), g, contributions)
    for name, value in g.items():
        assert out[name].dtype == value.dtype and out[name].shape == value.shape


def test_delta_updates_are_added_to_the_global() -> None:
    g = {"w": np.full(2, 10.0, np.float32), "n": np.array(3, np.int32)}
    for cls in (WeightedAverage, Median, TrimmedMean):
        fn = cls()
        fn.begin_round(1, g)
        fn.add("a", "w", np.full(2, 1.0, np.float32), 1, is_delta=True)
        fn.add("a", "n", np.array(2, np.int32), 1, is_delta=True)
        fn.commit("a")
        fn.add("b", "w", np.full(2, 13.0, np.float32), 1)  # a full model mixed with a delta
        fn.add("b", "n", np.array(5, np.int32), 1)
        fn.commit("b")
        out = fn.end_round()
        np.testing.assert_allclose(out["w"], 12.0)
        assert out["n"] == 5


def test_median_and_trimmed_mean_resist_outliers() -> None:
    g = {"w": np.zeros(3, np.float32)}
    values = [1.0, 2.0, 3.0, 4.0, 1000.0]
    contributions = [(f"c{i}", {"w": np.full(3, v, np.float32)}, 1 + i) for i, v in enumerate(values)]
    np.testing.assert_allclose(run_round(Median(), g, contributions)["w"], 3.0)
    np.testing.assert_allclose(run_round(TrimmedMean(0.2), g, contributions)["w"], 3.0)  # drops 1 and 1000
    np.testing.assert_allclose(run_round(TrimmedMean(0.0), g, contributions)["w"], 202.0)
    even = contributions[:4]
    np.testing.assert_allclose(run_round(Median(), g, even)["w"], 2.5)


def test_robust_functions_read_in_blocks_and_honor_removal(tmp_path: Path) -> None:
    fn = Median(tmp_dir=str(tmp_path))
    rng = np.random.default_rng(0)
    g = {"w": np.zeros(1000, np.float32)}
    fn.begin_round(1, g)
    acc = fn.accumulator("w")
    acc._block_bytes = 8 * 3 * 7  # type: ignore[attr-defined]  # force many small column blocks
    rows = [rng.normal(size=1000).astype(np.float32) for _ in range(3)]
    for i, row in enumerate(rows):
        acc.add(f"c{i}", row, 1)
    acc.add("bad", np.full(1000, 1e6, np.float32), 1)
    fn.remove("bad")
    fn.commit("c0"), fn.commit("c1"), fn.commit("c2")
    assert len(list(tmp_path.iterdir())) == 1  # the round's folder holds the rows on disk
    out = fn.end_round()
    np.testing.assert_allclose(out["w"], np.median(np.stack(rows), axis=0), rtol=1e-6)
    assert list(tmp_path.iterdir()) == []  # cleaned up when the round ends


def test_abort_round_cleans_temporary_files(tmp_path: Path) -> None:
    fn = TrimmedMean(0.1, tmp_dir=str(tmp_path))
    fn.begin_round(1, {"w": np.zeros(3, np.float32)})
    fn.add("a", "w", np.ones(3, np.float32), 1)
    fn.begin_round(2, {"w": np.zeros(3, np.float32)})  # an unfinished round is discarded
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("ratio", [-0.1, 0.5, "0.1", True, float("nan")])
def test_trimmed_mean_validates_ratio(ratio) -> None:
    with pytest.raises(ValueError, match="trim_ratio"):
        TrimmedMean(ratio)


def test_fedavgm_matches_hand_computation() -> None:
    lr, mom = 0.5, 0.9
    fn = FedAvgM(server_learning_rate=lr, momentum=mom)
    w = np.array([1.0, 2.0])
    velocity = np.zeros(2)
    for round_number, avg in enumerate([np.array([0.0, 1.0]), np.array([0.5, 0.5])], start=1):
        out = run_round(fn, {"w": w.copy()}, [("a", {"w": avg}, 2), ("b", {"w": avg}, 1)], round_number)
        velocity = mom * velocity + (w - avg)
        w = w - lr * velocity
        np.testing.assert_allclose(out["w"], w)
    np.testing.assert_allclose(fn.state_dict()["velocity/w"], velocity)


def test_fedavgm_without_momentum_and_unit_rate_is_fedavg() -> None:
    g = {"w": np.zeros(2, np.float32)}
    out = run_round(FedAvgM(1.0, 0.0), g, [("a", {"w": np.array([1, 3], np.float32)}, 1)])
    np.testing.assert_allclose(out["w"], [1, 3])


def test_fedadam_matches_hand_computation() -> None:
    lr, b1, b2, tau = 0.1, 0.9, 0.99, 1e-3
    fn = FedAdam(lr, b1, b2, tau)
    w = np.array([1.0, -1.0])
    m = np.zeros(2)
    v = np.zeros(2)
    for round_number, avg in enumerate([np.array([0.5, -0.5]), np.array([0.2, 0.1])], start=1):
        out = run_round(fn, {"w": w.copy()}, [("a", {"w": avg}, 1)], round_number)
        d = avg - w
        m = b1 * m + (1 - b1) * d
        v = b2 * v + (1 - b2) * d * d
        w = w + lr * m / (np.sqrt(v) + tau)
        np.testing.assert_allclose(out["w"], w)


def test_server_state_round_trip_continues_identically() -> None:
    g = {"w": np.array([1.0, 2.0], np.float32)}
    first = [("a", {"w": np.array([0.0, 0.0], np.float32)}, 1)]
    second = [("a", {"w": np.array([3.0, 1.0], np.float32)}, 1)]
    for cls in (FedAvgM, FedAdam):
        original = cls()
        mid = run_round(original, g, first, 1)
        restored = cls()
        restored.load_state_dict(original.state_dict())
        a = run_round(original, mid, second, 2)
        b = run_round(restored, mid, second, 2)
        np.testing.assert_array_equal(a["w"], b["w"])
        assert all(value.dtype == np.float32 for value in original.state_dict().values())


def test_optimizer_tensors_are_averaged_not_stepped() -> None:
    g = {"__opt__.m": np.zeros(2, np.float32)}
    out = run_round(FedAvgM(0.5, 0.9), g, [("a", {"__opt__.m": np.ones(2, np.float32)}, 1)])
    np.testing.assert_allclose(out["__opt__.m"], 1.0)


def test_load_state_dict_validates_keys() -> None:
    with pytest.raises(ValueError, match="unexpected state key"):
        FedAvgM().load_state_dict({"m/w": np.zeros(1)})
    with pytest.raises(ValueError, match="no state"):
        WeightedAverage().load_state_dict({"x": np.zeros(1)})
    WeightedAverage().load_state_dict({})


@pytest.mark.parametrize(
    ("factory", "setting"),
    [
        (lambda: FedAvgM(server_learning_rate=0), "server_learning_rate"),
        (lambda: FedAvgM(momentum=1.0), "momentum"),
        (lambda: FedAdam(beta1=-0.1), "beta1"),
        (lambda: FedAdam(beta2=1.5), "beta2"),
        (lambda: FedAdam(tau=0), "tau"),
        (lambda: FedAdam(server_learning_rate=float("inf")), "server_learning_rate"),
    ],
)
def test_server_optimizer_settings_are_validated(factory, setting) -> None:
    with pytest.raises(ValueError, match=setting):
        factory()


def test_weighted_metrics() -> None:
    out = weighted_metrics([({"acc": 0.5, "loss": 2.0}, 10), ({"acc": 1.0}, 30), ({"loss": 4.0}, 0)])
    assert out == pytest.approx({"acc": 0.875, "loss": 2.0})
    assert weighted_metrics([({"acc": 0.2}, 0), ({"acc": 0.4}, 0)]) == pytest.approx({"acc": 0.3})
    assert weighted_metrics([]) == {}
    with pytest.raises(ValueError, match="sample count"):
        weighted_metrics([({"acc": 1.0}, -1)])


def test_late_contribution_after_end_round_is_refused() -> None:
    for cls in ALL:
        fn = cls()
        fn.begin_round(1, {"w": np.zeros(2, np.float32)})
        acc = fn.accumulator("w")
        fn.end_round()
        with pytest.raises(ContributionError, match="closed"):
            acc.add("late", np.zeros(2, np.float32), 1)
