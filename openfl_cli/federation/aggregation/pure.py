"""Pure aggregation functions over plain arrays and over models (name -> array), for callers that hold
every result at once: a Workflow API `join`, a FedJob controller, a test.

They run the streaming accumulators' own arithmetic (`_kernels`), so they return the bits of a streaming
round over the same inputs listed in the order it took them: commit order for WeightedAverage (except
that a first result folded on arrival, if committed after others, is summed one place early), arrival
order for Median and TrimmedMean. The rules are the streaming ones:
- weights are sample counts >= 0; zero-weight inputs are ignored; all-zero weights are an error here
  (there is no global value to fall back on);
- results are new arrays in the inputs' dtype and shape, averaged in float64 and rounded once;
- non-float tensors (integers, bools) are never averaged: they take the common value when all inputs
  agree, else `global_value` (an error without one);
- Median and TrimmedMean use weights only to leave zero-weight inputs out, as in OpenFL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial

import numpy as np

from openfl_cli.federation.aggregation._kernels import (
    BLOCK,
    as_tensor,
    check_trim_ratio,
    divide_range,
    fold_range,
    median_rows,
    reduce_columns,
    trimmed_mean_rows,
    value_digest,
    weight_sum,
)
from openfl_cli.federation.aggregation.base import ContributionError, _check_weight, is_float_tensor
from openfl_cli.utils.parallel import for_ranges

Model = Mapping[str, np.ndarray]
# (arrays, weights), all with positive weight -> the aggregate (any float dtype, the tensor's shape)
FloatReduce = Callable[[list[np.ndarray], list[float]], np.ndarray]


def weighted_average(
    arrays: Sequence[np.ndarray],
    weights: Sequence[float],
    *,
    global_value: np.ndarray | None = None,
    name: str | None = None,
) -> np.ndarray:
    """sum(weight * array) / sum(weight), as the streaming WeightedAverage computes it."""
    return _aggregate(_label(name), arrays, weights, global_value, _weighted_mean)


def median(
    arrays: Sequence[np.ndarray],
    weights: Sequence[float] | None = None,
    *,
    global_value: np.ndarray | None = None,
    name: str | None = None,
) -> np.ndarray:
    """Coordinate-wise median, as the streaming Median computes it."""
    return _aggregate(_label(name), arrays, weights, global_value, partial(_by_columns, reduce=median_rows))


def trimmed_mean(
    arrays: Sequence[np.ndarray],
    trim_ratio: float = 0.1,
    weights: Sequence[float] | None = None,
    *,
    global_value: np.ndarray | None = None,
    name: str | None = None,
) -> np.ndarray:
    """Coordinate-wise mean after dropping floor(trim_ratio * n) lowest and highest values, as the
    streaming TrimmedMean computes it."""
    reduce = partial(trimmed_mean_rows, trim_ratio=check_trim_ratio(trim_ratio))
    return _aggregate(_label(name), arrays, weights, global_value, partial(_by_columns, reduce=reduce))


def weighted_average_models(
    results: Sequence[tuple[Model, float]], *, global_model: Model | None = None
) -> dict[str, np.ndarray]:
    """`weighted_average` of every tensor over (model, sample count) pairs."""
    return _per_tensor(results, global_model, weighted_average)


def median_models(
    results: Sequence[tuple[Model, float]], *, global_model: Model | None = None
) -> dict[str, np.ndarray]:
    """`median` of every tensor over (model, sample count) pairs (counts of zero leave a model out)."""
    return _per_tensor(results, global_model, median)


def trimmed_mean_models(
    results: Sequence[tuple[Model, float]], trim_ratio: float = 0.1, *, global_model: Model | None = None
) -> dict[str, np.ndarray]:
    """`trimmed_mean` of every tensor over (model, sample count) pairs."""
    return _per_tensor(results, global_model, partial(trimmed_mean, trim_ratio=check_trim_ratio(trim_ratio)))


# --- float reductions (the streaming arithmetic, over arrays in memory) ---------------------------


def _weighted_mean(arrays: list[np.ndarray], weights: list[float]) -> np.ndarray:
    first = arrays[0]
    total = np.empty(first.size, dtype=np.float64)
    for index, (array, weight) in enumerate(zip(arrays, weights, strict=True)):
        fold = partial(fold_range, total, array.reshape(-1), None, weight, index == 0)
        for_ranges(first.size, fold, align=BLOCK)
    out = np.empty(first.shape, dtype=first.dtype)
    for_ranges(first.size, partial(divide_range, total, weight_sum(weights), out.reshape(-1)), align=BLOCK)
    return out


def _by_columns(
    arrays: list[np.ndarray], weights: list[float], *, reduce: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    flats = [array.reshape(-1) for array in arrays]

    def read(start: int, stop: int) -> np.ndarray:
        return np.stack([flat[start:stop] for flat in flats], dtype=np.float64)

    return reduce_columns(read, len(flats), arrays[0].size, reduce)


# --- validation and the non-float rule ------------------------------------------------------------


def _label(name: str | None) -> str:
    return "arrays" if name is None else f"tensor {name!r}"


def _aggregate(
    label: str,
    arrays: Sequence[np.ndarray],
    weights: Sequence[float] | None,
    global_value: np.ndarray | None,
    reduce: FloatReduce,
) -> np.ndarray:
    arrays = list(arrays)
    if not arrays:
        raise ValueError(f"{label}: no arrays to aggregate")
    reference = _check_arrays(label, arrays, global_value)
    kept = _positive(label, arrays, weights)
    values = [array for array, _ in kept]
    if is_float_tensor(reference):
        return as_tensor(reduce(values, [weight for _, weight in kept]), reference.dtype, reference.shape)
    if len({value_digest(value) for value in values}) == 1:
        return np.array(values[0], copy=True)
    if global_value is None:
        raise ValueError(f"{label}: the {reference.dtype} values differ and no global value is given to keep")
    return np.array(global_value, copy=True)


def _check_arrays(label: str, arrays: list[np.ndarray], global_value: np.ndarray | None) -> np.ndarray:
    """The array every input must match in shape and dtype (the global value when given)."""
    if global_value is not None and not isinstance(global_value, np.ndarray):
        raise ValueError(f"{label}: the global value is a {type(global_value).__name__}, not a numpy array")
    reference, what = (arrays[0], "array 0") if global_value is None else (global_value, "the global value")
    for index, array in enumerate(arrays):
        if not isinstance(array, np.ndarray):
            raise ValueError(f"{label}: array {index} is a {type(array).__name__}, not a numpy array")
        if array.shape != reference.shape:
            raise ValueError(f"{label}: array {index} has shape {array.shape}, {what} has {reference.shape}")
        if array.dtype != reference.dtype:
            raise ValueError(f"{label}: array {index} has dtype {array.dtype}, {what} has {reference.dtype}")
    return reference


def _positive(
    label: str, arrays: list[np.ndarray], weights: Sequence[float] | None
) -> list[tuple[np.ndarray, float]]:
    """The (array, weight) pairs that count: weights checked as the streaming `add` checks them."""
    given = [1.0] * len(arrays) if weights is None else list(weights)
    if len(given) != len(arrays):
        raise ValueError(f"{label}: {len(arrays)} arrays but {len(given)} weights")
    checked = []
    for index, weight in enumerate(given):
        try:
            checked.append(_check_weight(weight))
        except ContributionError as error:
            raise ValueError(f"{label}, weights[{index}]: {error}") from None
    kept = [(array, weight) for array, weight in zip(arrays, checked, strict=True) if weight > 0]
    if not kept:
        raise ValueError(f"{label}: every weight is zero, there is nothing to aggregate")
    return kept


def _per_tensor(
    results: Sequence[tuple[Model, float]],
    global_model: Model | None,
    aggregate: Callable[..., np.ndarray],
) -> dict[str, np.ndarray]:
    """`aggregate(arrays, weights, global_value=..., name=...)` for each tensor of the models, which
    must all have the same tensor names (the global model, when given, at least those)."""
    results = list(results)
    if not results:
        raise ValueError("no models to aggregate")
    for index, result in enumerate(results):
        if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], Mapping)):
            raise ValueError(
                f"result {index}: expected a (model, sample count) pair, got {type(result).__name__}"
            )
    names = list(results[0][0])
    for index, (model, _) in enumerate(results[1:], start=1):
        if set(model) != set(names):
            difference = sorted(set(model) ^ set(names))
            raise ValueError(f"tensor {difference[0]!r} is in only one of models 0 and {index}")
    missing = [] if global_model is None else [name for name in names if name not in global_model]
    if missing:
        raise ValueError(f"tensor {missing[0]!r} is not in the global model")
    weights = [weight for _, weight in results]
    return {
        name: aggregate(
            [model[name] for model, _ in results],
            weights=weights,
            global_value=None if global_model is None else global_model[name],
            name=name,
        )
        for name in names
    }
