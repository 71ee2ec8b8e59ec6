"""Compression pipelines: how a collaborator encodes each tensor it uploads.

An encoded tensor is plain data (an encoding name, a payload, a few scalar params, dtype and shape),
so the aggregator decodes with `decode_tensor` alone: no pickled objects, no pipeline instance.
The decoder treats every field as untrusted input from the network.

Encodings:
- "raw":    payload = the tensor's C-order little-endian bytes (lossless).
- "sparse": payload = k ascending flat indices (`index_dtype`) then their k values (tensor dtype);
            the other elements are zero.
- "quant":  payload = one uint8 (n_bits <= 8) or uint16 code per element;
            value = min + code * scale.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from openfl_cli.tensors.codec import (
    array_bytes,
    array_from_buffer,
    as_array,
    check_shape,
    dtype_from_name,
    dtype_name,
)

ParamValue = str | int | float

RAW = "raw"
SPARSE = "sparse"
QUANT = "quant"


@dataclass(frozen=True)
class EncodedTensor:
    """One tensor as it travels: plain values only, checked by `decode_tensor` on arrival."""

    encoding: str  # "raw" | "sparse" | "quant"
    payload: bytes | memoryview
    params: dict[str, ParamValue]  # what the encoding needs besides the payload (scalars only)
    dtype: str  # name of the original dtype (codec.SUPPORTED_DTYPES)
    shape: tuple[int, ...]
    raw_nbytes: int  # size of the original tensor's bytes

    @property
    def nbytes(self) -> int:
        """Bytes of payload that travel (what the encoding saved is raw_nbytes - nbytes)."""
        return memoryview(self.payload).nbytes


class TensorEncoder(Protocol):
    """What an upload calls on the plan's compression pipeline (`CompressionPipeline` is one)."""

    @property
    def is_lossless(self) -> bool:
        """True when decoding gives back the very values (the in-process link then skips the codec)."""
        ...

    def encode(self, array: np.ndarray) -> EncodedTensor: ...


class CompressionPipeline(ABC):
    """Encodes one tensor at a time; `decode_tensor` undoes any pipeline's output."""

    is_lossless: bool = False

    def encode(self, array: np.ndarray) -> EncodedTensor:
        """`array` (any layout, byte order or supported dtype) as an EncodedTensor."""
        array = as_array(array)
        dtype_name(array.dtype)  # refuse object and other unsupported dtypes up front
        return self._encode(array)

    @abstractmethod
    def _encode(self, array: np.ndarray) -> EncodedTensor: ...


class NoCompressionPipeline(CompressionPipeline):
    """Every tensor as its raw bytes, without a copy when already C-contiguous little-endian."""

    is_lossless = True

    def _encode(self, array: np.ndarray) -> EncodedTensor:
        return _raw(array)


class SparsityPipeline(CompressionPipeline):
    """Keeps the `p_sparsity` fraction of largest-magnitude elements of each float tensor.

    Integer, bool, complex and tiny tensors (fewer than `min_elements`) are sent raw, as is any tensor
    whose sparse form would not be smaller.
    """

    def __init__(self, p_sparsity: float = 0.1, min_elements: int = 64) -> None:
        if not 0.0 < p_sparsity <= 1.0:
            raise ValueError(f"p_sparsity must be in (0, 1], got {p_sparsity}")
        if min_elements < 1:
            raise ValueError(f"min_elements must be >= 1, got {min_elements}")
        self.p_sparsity = float(p_sparsity)
        self.min_elements = int(min_elements)

    def _encode(self, array: np.ndarray) -> EncodedTensor:
        if array.dtype.kind != "f" or array.size < self.min_elements:
            return _raw(array)
        flat = np.ascontiguousarray(array).reshape(-1)
        k = max(1, math.ceil(self.p_sparsity * flat.size))
        index_dtype = np.dtype("<i4") if flat.size <= np.iinfo(np.int32).max else np.dtype("<i8")
        if k * (index_dtype.itemsize + flat.itemsize) >= flat.nbytes:
            return _raw(array)
        indices = np.sort(np.argpartition(np.abs(flat), flat.size - k)[flat.size - k :])
        # One buffer filled in place: indices, then values in little-endian order.
        value_dtype = dtype_from_name(dtype_name(flat.dtype))
        payload = np.empty(k * (index_dtype.itemsize + value_dtype.itemsize), dtype=np.uint8)
        split = k * index_dtype.itemsize
        payload[:split].view(index_dtype)[:] = indices
        payload[split:].view(value_dtype)[:] = flat[indices]
        params: dict[str, ParamValue] = {"k": k, "index_dtype": index_dtype.name}
        return _encoded(SPARSE, payload.data, params, array)


class QuantizationPipeline(CompressionPipeline):
    """Per-tensor affine quantization of float tensors to `n_bits` codes (min and scale as params).

    The reconstruction error of each element is at most scale / 2 = (max - min) / (2 * (2**n_bits - 1)).
    Non-float, tiny and non-finite tensors are sent raw.
    """

    def __init__(self, n_bits: int = 8, min_elements: int = 16) -> None:
        if isinstance(n_bits, bool) or not isinstance(n_bits, int) or not 1 <= n_bits <= 16:
            raise ValueError(f"n_bits must be an integer in 1..16, got {n_bits!r}")
        if min_elements < 1:
            raise ValueError(f"min_elements must be >= 1, got {min_elements}")
        self.n_bits = n_bits
        self.min_elements = int(min_elements)

    def _encode(self, array: np.ndarray) -> EncodedTensor:
        if array.dtype.kind != "f" or array.size < self.min_elements:
            return _raw(array)
        code_dtype = _code_dtype(self.n_bits)
        if code_dtype.itemsize >= array.dtype.itemsize:
            return _raw(array)
        low, high = float(np.min(array)), float(np.max(array))
        if not (math.isfinite(low) and math.isfinite(high)):
            return _raw(array)  # let the receiver see (and refuse) the non-finite values
        levels = 2**self.n_bits - 1
        scale = (high - low) / levels
        if not math.isfinite(scale):
            return _raw(array)
        if scale > 0:
            scaled = (np.asarray(array, dtype=np.float64) - low) / scale
            codes = np.clip(np.rint(scaled), 0, levels).astype(code_dtype)
        else:
            codes = np.zeros(array.shape, dtype=code_dtype)
        params: dict[str, ParamValue] = {"n_bits": self.n_bits, "min": low, "scale": scale}
        return _encoded(QUANT, codes.tobytes(), params, array)


def decode_tensor(encoded: EncodedTensor, *, max_nbytes: int | None = None) -> np.ndarray:
    """The array that `encoded` stands for; ValueError when anything about it is inconsistent.

    `max_nbytes` bounds the decoded size, so a small payload cannot claim a huge shape.
    """
    dtype = dtype_from_name(encoded.dtype)
    shape = check_shape(encoded.shape)
    raw_nbytes = math.prod(shape) * dtype.itemsize
    if encoded.raw_nbytes != raw_nbytes:
        raise ValueError(f"raw_nbytes {encoded.raw_nbytes} does not match dtype {encoded.dtype} and {shape}")
    if max_nbytes is not None and raw_nbytes > max_nbytes:
        raise ValueError(f"tensor of {raw_nbytes} bytes exceeds the limit of {max_nbytes}")
    decoder = _DECODERS.get(encoded.encoding) if isinstance(encoded.encoding, str) else None
    if decoder is None:
        raise ValueError(f"unknown tensor encoding {encoded.encoding!r}; known: {', '.join(_DECODERS)}")
    return decoder(encoded, dtype, shape)


def compression_report(encoded: Iterable[EncodedTensor]) -> tuple[int, int]:
    """(bytes the tensors occupy, bytes actually sent) over `encoded`."""
    raw = sent = 0
    for item in encoded:
        raw += item.raw_nbytes
        sent += item.nbytes
    return raw, sent


def _decode_raw(encoded: EncodedTensor, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    _expect_params(encoded, set())
    return array_from_buffer(encoded.payload, encoded.dtype, shape)


def _decode_sparse(encoded: EncodedTensor, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    _expect_params(encoded, {"k", "index_dtype"})
    _expect_float(encoded, dtype)
    size = math.prod(shape)
    k = _int_param(encoded, "k", 0, size)
    index_name = encoded.params["index_dtype"]
    if index_name not in ("int32", "int64"):
        raise ValueError(f"sparse index_dtype must be int32 or int64, got {index_name!r}")
    index_dtype = dtype_from_name(str(index_name))
    try:
        payload = memoryview(encoded.payload).cast("B")
    except TypeError as exc:
        raise ValueError(f"sparse payload must be contiguous bytes: {exc}") from None
    index_bytes = k * index_dtype.itemsize
    if payload.nbytes != index_bytes + k * dtype.itemsize:
        raise ValueError(f"sparse payload of {payload.nbytes} bytes does not hold {k} indices and values")
    indices = array_from_buffer(payload[:index_bytes], str(index_name), (k,))
    values = array_from_buffer(payload[index_bytes:], encoded.dtype, (k,))
    if k and (indices[0] < 0 or indices[-1] >= size or np.any(indices[1:] <= indices[:-1])):
        raise ValueError(f"sparse indices must be strictly increasing and within 0..{size - 1}")
    dense = np.zeros(size, dtype=dtype)
    dense[indices] = values
    return dense.reshape(shape)


def _decode_quant(encoded: EncodedTensor, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    _expect_params(encoded, {"n_bits", "min", "scale"})
    _expect_float(encoded, dtype)
    n_bits = _int_param(encoded, "n_bits", 1, 16)
    low, scale = _float_param(encoded, "min"), _float_param(encoded, "scale")
    if scale < 0:
        raise ValueError(f"quantization scale must be >= 0, got {scale}")
    code_dtype = _code_dtype(n_bits)
    codes = array_from_buffer(encoded.payload, code_dtype.name, shape)
    levels = 2**n_bits - 1
    if codes.size and int(codes.max()) > levels:
        raise ValueError(f"quantization code above {levels} for n_bits={n_bits}")
    limit = float(np.finfo(dtype).max)
    if max(abs(low), abs(low + levels * scale)) > limit:
        raise ValueError(f"quantization params overflow {encoded.dtype}: min={low}, scale={scale}")
    work = np.result_type(dtype, np.float32)
    decoded = codes.astype(work) * work.type(scale) + work.type(low)
    return decoded.astype(dtype, copy=False)


_DECODERS: dict[str, Callable[[EncodedTensor, np.dtype, tuple[int, ...]], np.ndarray]] = {
    RAW: _decode_raw,
    SPARSE: _decode_sparse,
    QUANT: _decode_quant,
}


def _raw(array: np.ndarray) -> EncodedTensor:
    return _encoded(RAW, array_bytes(array), {}, array)


def _encoded(
    encoding: str, payload: bytes | memoryview, params: dict[str, ParamValue], array: np.ndarray
) -> EncodedTensor:
    return EncodedTensor(
        encoding=encoding,
        payload=payload,
        params=params,
        dtype=dtype_name(array.dtype),
        shape=tuple(int(dim) for dim in array.shape),
        raw_nbytes=int(array.size) * array.dtype.itemsize,
    )


def _code_dtype(n_bits: int) -> np.dtype:
    return np.dtype("<u1") if n_bits <= 8 else np.dtype("<u2")


def _expect_params(encoded: EncodedTensor, names: set[str]) -> None:
    if not isinstance(encoded.params, dict) or set(encoded.params) != names:
        got = sorted(encoded.params) if isinstance(encoded.params, dict) else encoded.params
        raise ValueError(f"{encoded.encoding} encoding takes params {sorted(names)}, got {got}")


def _expect_float(encoded: EncodedTensor, dtype: np.dtype) -> None:
    if dtype.kind != "f":
        raise ValueError(f"{encoded.encoding} encoding applies to float tensors, not {encoded.dtype}")


def _int_param(encoded: EncodedTensor, name: str, low: int, high: int) -> int:
    value = encoded.params[name]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(
            f"{encoded.encoding} param {name} must be an integer in {low}..{high}, got {value!r}"
        )
    return value


def _float_param(encoded: EncodedTensor, name: str) -> float:
    value = encoded.params[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{encoded.encoding} param {name} must be a finite number, got {value!r}")
    return float(value)
