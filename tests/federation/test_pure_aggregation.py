"""Pure aggregation functions: the same bits as the streaming accumulators, hand-computed cases, errors.

Seeded NumPy cases stand in for property tests (hypothesis is not a dependency).
"""

from __future__ import annotations

import numpy as np
import pytest

from openfl_cli.federation.aggregation import (
    AggregationFunction,
    Median,
    TrimmedMean,
    WeightedAverage,
    median,
    median_models,
    trimmed_mean,
    trimmed_mean_models,
    weighted_average,
    weighted_average_models,
)
from openfl_cli.federation.aggregation.average import BLOCK

Model = dict[str, np.ndarray]
SHAPES = [(), (1,), (7,), (3, 4), (2, 0, 3), (2, 3, 5)]
FLOATS = [np.float16, np.float32, np.float64]
SEEDS = range(12)


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def assert_same_models(a: Model, b: Model) -> None:
    assert list(a) == list(b)
    for name in a:
        assert same_bits(a[name], b[name]), name


def random_case(seed: int, *, big: bool = False) -> tuple[Model, list[tuple[Model, float]]]:
    """A global model and 1-6 results: floats of every dtype and several shapes (0-d, empty), integer
    and bool tensors that agree or not, weights with zeros, integers and fractions."""
    rng = np.random.default_rng(seed)
    specs = {f"f{i}": (dtype, SHAPES[rng.integers(len(SHAPES))]) for i, dtype in enumerate(FLOATS * 2)}
    specs["scalar"] = (np.float32, ())
    if big:
        specs["big"] = (np.float32, (2 * BLOCK + 5,))  # spans several fold blocks

    def floats(dtype: type, shape: tuple[int, ...]) -> np.ndarray:
        scale = 10.0 ** rng.integers(-3, 4)
        return np.asarray(rng.standard_normal(shape) * scale, dtype=dtype)

    count = int(rng.integers(1, 7))
    agree = bool(rng.integers(2))
    steps = rng.integers(0, 100, size=3)
    mask = rng.integers(0, 2, size=(2, 2)).astype(bool)
    weights: list[float] = [int(w) for w in rng.integers(0, 40, size=count)]
    weights[int(rng.integers(count))] = float(rng.uniform(0.5, 5.0))  # at least one positive, a fraction
    results = []
    for _ in range(count):
        model = {name: floats(dtype, shape) for name, (dtype, shape) in specs.items()}
        model["steps"] = steps.copy() if agree else rng.integers(0, 100, size=3)
        model["mask"] = mask.copy() if agree else rng.integers(0, 2, size=(2, 2)).astype(bool)
        results.append((model, weights.pop(0)))
    global_model = {name: floats(dtype, shape) for name, (dtype, shape) in specs.items()}
    global_model["steps"] = rng.integers(0, 100, size=3)
    global_model["mask"] = rng.integers(0, 2, size=(2, 2)).astype(bool)
    return global_model, results


def stream(
    fn: AggregationFunction, global_model: Model, results: list[tuple[Model, float]], mode: str
) -> Model:
    """One streaming round over `results`, committed in their order, along one of the accumulator's paths."""
    names = [f"c{i}" for i in range(len(results))]
    fn.begin_round(1, global_model)
    for who, (model, weight) in zip(names, results, strict=True):
        for name, array in model.items():
            buffer = fn.staging_array(name) if mode == "owned" else None
            if buffer is not None:
                buffer[...] = array
                fn.add(who, name, buffer, weight, may_fold=False, owned=True)
            else:
                fn.add(who, name, array, weight, may_fold=mode != "staged")
        if mode != "interleaved":
            fn.commit(who)
    for who in names if mode == "interleaved" else ():
        fn.commit(who)
    return fn.end_round()


# --- the same bits as streaming ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sequential", "staged", "interleaved", "owned"])
def test_weighted_average_models_gives_the_streaming_bits(mode: str) -> None:
    for seed in SEEDS:
        global_model, results = random_case(seed, big=seed < 2)
        expected = stream(WeightedAverage(), global_model, results, mode)
        assert_same_models(weighted_average_models(results, global_model=global_model), expected)


@pytest.mark.parametrize("trim_ratio", [None, 0.0, 0.1, 0.25, 0.4])
def test_median_and_trimmed_mean_models_give_the_streaming_bits(trim_ratio: float | None) -> None:
    for seed in SEEDS:
        global_model, results = random_case(seed)
        if trim_ratio is None:
            expected = stream(Median(), global_model, results, "sequential")
            actual = median_models(results, global_model=global_model)
        else:
            expected = stream(TrimmedMean(trim_ratio), global_model, results, "sequential")
            actual = trimmed_mean_models(results, trim_ratio, global_model=global_model)
        assert_same_models(actual, expected)


def test_array_functions_give_the_bits_of_the_model_functions() -> None:
    _, results = random_case(3)
    arrays = [model["f1"] for model, _ in results]
    weights = [weight for _, weight in results]
    assert same_bits(weighted_average(arrays, weights), weighted_average_models(results)["f1"])
    assert same_bits(median(arrays, weights), median_models(results)["f1"])
    assert same_bits(trimmed_mean(arrays, 0.25, weights), trimmed_mean_models(results, 0.25)["f1"])


# --- hand-computed cases --------------------------------------------------------------------------


def test_weighted_average_known_values() -> None:
    out = weighted_average([np.full((2, 2), 1.0, np.float32), np.full((2, 2), 4.0, np.float32)], [10, 20])
    assert out.dtype == np.float32 and out.shape == (2, 2)
    np.testing.assert_array_equal(out, 3.0)
    scalar = weighted_average([np.array(2.0), np.array(5.0)], [1, 2])
    assert scalar.shape == () and scalar == 4.0


def test_weighted_average_sums_in_float64_and_rounds_once() -> None:
    top = np.finfo(np.float16).max
    out = weighted_average([np.array([top], np.float16)] * 3, [1, 1, 1])
    assert out.dtype == np.float16 and out[0] == top  # a float16 sum would overflow to inf
    third = weighted_average([np.array([1.0], np.float32), np.array([0.0], np.float32)], [1, 2])
    assert third[0] == np.float32(1 / 3)


def test_zero_weight_arrays_are_left_out() -> None:
    kept = np.array([1.0, 2.0])
    ignored = np.array([np.nan, 1e300])
    assert same_bits(weighted_average([kept, ignored], [3, 0]), kept)
    assert same_bits(median([kept, ignored, kept], [1, 0, 1]), kept)
    assert same_bits(trimmed_mean([ignored, kept], 0.1, [0, 2]), kept)


def test_median_and_trimmed_mean_resist_outliers() -> None:
    arrays = [np.full(3, v, np.float32) for v in (1.0, 2.0, 3.0, 4.0, 1000.0)]
    np.testing.assert_array_equal(median(arrays), 3.0)
    np.testing.assert_array_equal(median(arrays[:4]), 2.5)
    np.testing.assert_array_equal(trimmed_mean(arrays, 0.2), 3.0)  # drops 1 and 1000
    np.testing.assert_array_equal(trimmed_mean(arrays, 0.0), 202.0)
    assert median(arrays).dtype == np.float32


def test_integer_and_bool_tensors_take_the_agreed_value_else_the_global() -> None:
    steps = [np.array(9, np.int64), np.array(9, np.int64)]
    for function in (weighted_average, median, trimmed_mean):
        agreed = function(steps, weights=[1, 3])
        assert agreed == 9 and agreed.dtype == np.int64
    global_mask = np.array([True, False])
    masks = [np.array([True, True]), np.array([False, True])]
    kept = weighted_average(masks, [1, 1], global_value=global_mask)
    assert same_bits(kept, global_mask) and kept is not global_mask
    assert weighted_average(masks, [1, 0]).tolist() == [True, True]  # the zero-weight one does not count
    with pytest.raises(ValueError, match=r"tensor 'mask': the bool values differ and no global value"):
        weighted_average(masks, [1, 1], name="mask")


def test_inputs_are_not_mutated_and_results_are_new_arrays() -> None:
    arrays = [np.arange(4, dtype=np.float32), np.ones(4, np.float32)]
    copies = [array.copy() for array in arrays]
    for out in (weighted_average(arrays, [1, 1]), median(arrays), trimmed_mean(arrays, 0.0)):
        assert not any(np.shares_memory(out, array) for array in arrays)
    agreed = weighted_average([np.array([1, 2])] * 2, [1, 1])
    assert all(same_bits(a, b) for a, b in zip(arrays, copies, strict=True))
    assert agreed.tolist() == [1, 2]


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arrays", "weights", "message"),
    [
        ([], [], r"tensor 'w': no arrays to aggregate"),
        ([np.zeros(3), np.zeros(4)], [1, 1], r"tensor 'w': array 1 has shape \(4,\), array 0 has \(3,\)"),
        ([np.zeros(3), np.zeros(3, np.float32)], [1, 1], r"tensor 'w': array 1 has dtype float32"),
        ([np.zeros(3), [0.0, 0.0, 0.0]], [1, 1], r"tensor 'w': array 1 is a list, not a numpy array"),
        ([np.zeros(3)], [1, 1], r"tensor 'w': 1 arrays but 2 weights"),
        ([np.zeros(3), np.zeros(3)], [1, -1], r"tensor 'w', weights\[1\]: weight must be a finite number"),
        ([np.zeros(3)], [float("nan")], r"weights\[0\]: weight must be a finite number"),
        ([np.zeros(3)], [float("inf")], r"weights\[0\]"),
        ([np.zeros(3)], [True], r"weights\[0\]: weight must be a number"),
        ([np.zeros(3)], [None], r"weights\[0\]: weight must be a number"),
        ([np.zeros(3), np.zeros(3)], [0, 0.0], r"tensor 'w': every weight is zero"),
    ],
)
def test_bad_arrays_and_weights_are_refused(arrays: list, weights: list, message: str) -> None:
    for function in (weighted_average, median, trimmed_mean):
        with pytest.raises(ValueError, match=message):
            function(arrays, weights=weights, name="w")


def test_arrays_are_checked_against_the_global_value() -> None:
    with pytest.raises(ValueError, match=r"array 0 has shape \(2,\), the global value has \(3,\)"):
        weighted_average([np.zeros(2)], [1], global_value=np.zeros(3))
    with pytest.raises(ValueError, match="the global value is a list"):
        median([np.zeros(2)], global_value=[0.0, 0.0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^arrays: no arrays"):
        median([])  # unnamed: the message says what it can


@pytest.mark.parametrize("ratio", [-0.1, 0.5, "0.1", True, float("nan")])
def test_trim_ratio_out_of_range_is_refused(ratio: object) -> None:
    with pytest.raises(ValueError, match="trim_ratio"):
        trimmed_mean([np.zeros(2)], ratio)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="trim_ratio"):
        trimmed_mean_models([({"w": np.zeros(2)}, 1)], ratio)  # type: ignore[arg-type]


def test_bad_model_lists_are_refused() -> None:
    a, b = {"w": np.zeros(2), "b": np.zeros(1)}, {"w": np.zeros(2)}
    with pytest.raises(ValueError, match="no models"):
        weighted_average_models([])
    with pytest.raises(ValueError, match=r"result 0: expected a \(model, sample count\) pair"):
        weighted_average_models([a])  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"tensor 'b' is in only one of models 0 and 1"):
        median_models([(a, 1), (b, 1)])
    with pytest.raises(ValueError, match=r"tensor 'b' is not in the global model"):
        weighted_average_models([(a, 1)], global_model=b)
    with pytest.raises(ValueError, match=r"tensor 'w', weights\[1\]"):
        weighted_average_models([(b, 1), (b, -2)])
    with pytest.raises(ValueError, match=r"tensor 'w': array 1 has shape \(3,\)"):
        trimmed_mean_models([(b, 1), ({"w": np.zeros(3)}, 1)])
