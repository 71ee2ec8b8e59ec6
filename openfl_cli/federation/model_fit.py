"""Whether one model's tensors fit another's: the check before a model is served or loaded."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


def misfit(reference: Mapping[str, np.ndarray], model: Mapping[str, np.ndarray]) -> str:
    """What keeps `model` from standing in for `reference`, in one line ("" when it fits): tensors of
    `reference` that `model` lacks, or holds with another shape. Extra tensors of `model` are allowed
    (optimizer state travels with the weights)."""
    missing = [name for name in reference if name not in model]
    reshaped = [
        f"{name!r} has shape {tuple(model[name].shape)} where {tuple(array.shape)} is expected"
        for name, array in reference.items()
        if name in model and tuple(model[name].shape) != tuple(array.shape)
    ]
    problems = [f"{len(missing)} tensor(s) missing ({', '.join(map(repr, missing[:3]))})"] if missing else []
    return "; ".join(problems + reshaped[:3])
