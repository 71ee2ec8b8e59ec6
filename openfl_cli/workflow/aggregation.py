"""`fedavg(inputs, "model")`: the mean of one attribute over a join's inputs, folded one input at a time.

The attribute may be a NumPy array, a mapping of arrays, or a model with `state_dict()` /
`load_state_dict()` (a PyTorch module: its floating-point entries are averaged, the others taken from
the first input). Only the running sum and the input being read are held at once. Weights (sample
counts, say) may be given per input, or named as another attribute of the inputs.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from openfl_cli.errors import UsageError


def fedavg(inputs: Iterable[Any], attribute: str, weights: Sequence[float] | str | None = None) -> Any:
    total = 0.0
    sums: dict[str, Any] | None = None
    first: Any = None
    kind = ""
    for index, item in enumerate(inputs):
        if not hasattr(item, attribute):
            raise UsageError(f"fedavg: input {index} has no attribute {attribute!r}")
        weight = _weight(item, index, weights)
        value = getattr(item, attribute)
        if first is None:
            first, kind = value, _kind(value)
        entries = _entries(value, kind)
        if sums is None:
            sums = {name: _scaled(entry, weight) for name, entry in entries.items()}
        else:
            if entries.keys() != sums.keys():
                raise UsageError(f"fedavg: input {index}'s {attribute} has other entries than the first")
            for name, entry in entries.items():
                if _averaged(entry):
                    sums[name] = sums[name] + _scaled(entry, weight)
        total += weight
    if sums is None:
        raise UsageError("fedavg: no inputs")
    if total <= 0:
        raise UsageError("fedavg: the weights add up to zero")
    means = {name: (value / total if _averaged(value) else value) for name, value in sums.items()}
    return _rebuild(first, kind, means)


def _weight(item: Any, index: int, weights: Sequence[float] | str | None) -> float:
    if weights is None:
        return 1.0
    value = getattr(item, weights) if isinstance(weights, str) else weights[index]
    weight = float(value)
    if weight < 0:
        raise UsageError(f"fedavg: input {index} has a negative weight {weight}")
    return weight


def _kind(value: Any) -> str:
    if hasattr(value, "state_dict") and hasattr(value, "load_state_dict"):
        return "module"
    if isinstance(value, Mapping):
        return "mapping"
    if isinstance(value, np.ndarray | np.generic | float | int):
        return "array"
    raise UsageError(f"fedavg: cannot average a {type(value).__name__}")


def _entries(value: Any, kind: str) -> dict[str, Any]:
    if kind == "module":
        return dict(value.state_dict())
    if kind == "mapping":
        return dict(value)
    return {"": value}


def _averaged(entry: Any) -> bool:
    """Floating-point values are averaged; integer counters (batch-norm's) come from the first input."""
    dtype = getattr(entry, "dtype", None)
    if dtype is None:
        return isinstance(entry, int | float) and not isinstance(entry, bool)
    return bool(getattr(dtype, "is_floating_point", False)) or getattr(dtype, "kind", "") in "fc"


def _scaled(entry: Any, weight: float) -> Any:
    if not _averaged(entry):
        return entry
    if hasattr(entry, "detach"):  # a framework tensor: sum in double precision, on its own device
        return entry.detach().double() * weight
    return np.asarray(entry, dtype=np.result_type(entry, np.float64)) * weight


def _rebuild(first: Any, kind: str, means: dict[str, Any]) -> Any:
    if kind == "module":
        reference = first.state_dict()
        model = copy.deepcopy(first)
        model.load_state_dict({name: _like(value, reference[name]) for name, value in means.items()})
        return model
    if kind == "mapping":
        return {name: _like(value, first[name]) for name, value in means.items()}
    return _like(means[""], first)


def _like(value: Any, reference: Any) -> Any:
    dtype = getattr(reference, "dtype", None)
    if dtype is None:
        return float(value)
    if hasattr(value, "to") and hasattr(reference, "detach"):
        return value.to(dtype)
    return np.asarray(value).astype(dtype)
