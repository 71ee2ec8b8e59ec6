"""ndarray <-> bytes without pickle: a closed set of dtype names and C-order little-endian bytes.

Everything that moves tensors (snapshots, the wire, compression pipelines) goes through these four
functions, so the dtype whitelist and the size checks live in one place.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

# Canonical (little-endian) dtype of every name we accept. Object, string, void, datetime and
# structured dtypes are refused: they cannot be rebuilt from bytes safely.
_DTYPES: dict[str, np.dtype[Any]] = {
    name: np.dtype(name).newbyteorder("<")
    for name in (
        "bool",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "float16",
        "float32",
        "float64",
        "complex64",
        "complex128",
    )
}

SUPPORTED_DTYPES: tuple[str, ...] = tuple(_DTYPES)
# every accepted dtype object in either byte order -> its name: the hot path asks for names per tensor
_NAMES: dict[np.dtype[Any], str] = {
    variant: name
    for name, dtype in _DTYPES.items()
    for variant in (dtype, dtype.newbyteorder(">"), dtype.newbyteorder("="))
}


def dtype_name(dtype: DTypeLike) -> str:
    """The portable name of `dtype` ("float32", "bool", ...), whatever its byte order."""
    if isinstance(dtype, np.dtype):
        known = _NAMES.get(dtype)
        if known is not None:
            return known
    resolved = np.dtype(dtype)
    name = resolved.name
    if resolved.fields is not None or resolved.subdtype is not None or name not in _DTYPES:
        raise ValueError(f"unsupported tensor dtype {resolved!s}; supported: {', '.join(SUPPORTED_DTYPES)}")
    return name


def dtype_from_name(name: str) -> np.dtype[Any]:
    """The little-endian dtype called `name`; unknown names (possibly from the network) are refused."""
    try:
        return _DTYPES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown tensor dtype {name!r}; supported: {', '.join(SUPPORTED_DTYPES)}") from None


def as_array(value: np.ndarray | np.generic) -> np.ndarray:
    """`value` as an ndarray (numpy scalars become 0-d arrays); anything else is a TypeError."""
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, np.generic):
        return np.asarray(value)
    raise TypeError(f"expected a numpy array, got {type(value).__name__}")


def array_bytes(array: np.ndarray) -> memoryview:
    """The elements of `array` as flat C-order little-endian bytes.

    No copy when the array is already C-contiguous and little-endian (the view keeps it alive);
    otherwise one copy into that layout.
    """
    array = as_array(array)
    canonical = _DTYPES[dtype_name(array.dtype)]
    contiguous = np.ascontiguousarray(array, dtype=canonical)
    # reshape(-1) of a C-contiguous array is a view; 0-d arrays become one element.
    return contiguous.reshape(-1).view(np.uint8).data


def check_shape(shape: Sequence[int]) -> tuple[int, ...]:
    """`shape` as a tuple of non-negative Python ints, or ValueError."""
    try:
        dims = tuple(shape)
    except TypeError:
        raise ValueError(f"tensor shape must be a sequence of integers, got {shape!r}") from None
    for dim in dims:
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 0:
            raise ValueError(f"tensor shape must hold non-negative integers, got {shape!r}")
    return tuple(int(dim) for dim in dims)


def expected_nbytes(dtype: str, shape: Sequence[int]) -> int:
    """Bytes that a tensor of this dtype name and shape occupies (exact, no overflow)."""
    return math.prod(check_shape(shape)) * dtype_from_name(dtype).itemsize


def array_from_buffer(buffer: Any, dtype: str, shape: Sequence[int]) -> np.ndarray:
    """An array of `dtype` (a name) and `shape` viewing `buffer` without a copy.

    The byte count must match exactly. The array is writable only when the buffer is.
    """
    resolved = dtype_from_name(dtype)
    dims = check_shape(shape)
    try:
        view = memoryview(buffer).cast("B")
    except TypeError as exc:
        raise ValueError(f"tensor buffer must be a contiguous bytes-like object: {exc}") from None
    expected = math.prod(dims) * resolved.itemsize
    if view.nbytes != expected:
        raise ValueError(
            f"tensor of dtype {dtype} and shape {dims} needs {expected} bytes, got {view.nbytes}"
        )
    return np.frombuffer(view, dtype=resolved).reshape(dims)
