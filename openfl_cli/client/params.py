"""The script's framework type <-> the runner's `dict[str, numpy.ndarray]`.

PyTorch scripts get and send tensors (the conversion lives in `openfl_cli.runners.torch_params`, the
only package that imports PyTorch, and is imported only when asked for); NumPy, TensorFlow and Keras
scripts get NumPy arrays, which Keras' `set_weights` takes as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

FRAMEWORKS = ("pytorch", "numpy", "tensorflow", "keras")


def check_framework(framework: str) -> str:
    name = str(framework).lower()
    if name not in FRAMEWORKS:
        raise ValueError(f"framework must be one of {FRAMEWORKS}, got {framework!r}")
    return name


def to_script(params: dict[str, np.ndarray], framework: str) -> dict[str, Any]:
    """The arrays as the script's framework wants them (they are the script's own copies)."""
    if framework == "pytorch":
        from openfl_cli.runners.torch_params import to_torch

        return dict(to_torch(params))
    return params


def from_script(params: Mapping[str, Any], framework: str) -> dict[str, np.ndarray]:
    """What the script sent as named NumPy arrays; values that are not numeric arrays are refused."""
    if framework == "pytorch":
        from openfl_cli.runners.torch_params import from_torch

        arrays = from_torch(params)
    else:
        arrays = {name: np.asarray(value) for name, value in params.items()}
    for name, array in arrays.items():
        if array.dtype.kind not in "biufc":
            raise ValueError(f"params[{name!r}]: expected a numeric array or tensor, got dtype {array.dtype}")
    return arrays
