"""Compression pipelines: round trips, what each keeps, bytes saved, and hostile payloads refused."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from openfl_cli.tensors.codec import SUPPORTED_DTYPES
from openfl_cli.tensors.pipelines import (
    CompressionPipeline,
    EncodedTensor,
    NoCompressionPipeline,
    QuantizationPipeline,
    SparsityPipeline,
    compression_report,
    decode_tensor,
)

PIPELINES = [NoCompressionPipeline(), SparsityPipeline(0.1), QuantizationPipeline(8)]


def _weights(shape: tuple[int, ...] = (64, 32), dtype: str = "float32", seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("pipeline", PIPELINES, ids=lambda p: type(p).__name__)
@pytest.mark.parametrize("dtype", SUPPORTED_DTYPES)
@pytest.mark.parametrize("shape", [(), (0,), (3,), (0, 5), (40, 30)])
def test_round_trip_keeps_dtype_and_shape(pipeline: CompressionPipeline, dtype: str, shape: tuple) -> None:
    array = (np.arange(math.prod(shape)).reshape(shape) % 5).astype(dtype)
    encoded = pipeline.encode(array)
    decoded = decode_tensor(encoded)
    assert decoded.dtype == array.dtype and decoded.shape == array.shape
    assert encoded.raw_nbytes == array.nbytes
    if pipeline.is_lossless or array.dtype.kind != "f":
        np.testing.assert_array_equal(decoded, array)


def test_no_compression_is_lossless_and_zero_copy() -> None:
    pipeline = NoCompressionPipeline()
    array = _weights()
    encoded = pipeline.encode(array)
    assert pipeline.is_lossless and encoded.encoding == "raw" and encoded.params == {}
    assert np.shares_memory(np.frombuffer(encoded.payload, dtype=np.uint8), array)
    decoded = decode_tensor(encoded)
    np.testing.assert_array_equal(decoded, array)
    assert compression_report([encoded]) == (array.nbytes, array.nbytes)


def test_no_compression_handles_strided_and_big_endian() -> None:
    for array in (_weights((10, 10), "float64")[::3, ::2], np.arange(12, dtype=">i8").reshape(3, 4)):
        decoded = decode_tensor(NoCompressionPipeline().encode(array))
        np.testing.assert_array_equal(decoded, array)


@pytest.mark.parametrize("p_sparsity", [0.01, 0.1, 0.3])
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_sparsity_keeps_exactly_the_top_k(p_sparsity: float, dtype: str) -> None:
    array = _weights((50, 40), dtype)
    pipeline = SparsityPipeline(p_sparsity)
    encoded = pipeline.encode(array)
    assert encoded.encoding == "sparse" and not pipeline.is_lossless
    k = math.ceil(p_sparsity * array.size)
    assert encoded.params["k"] == k
    decoded = decode_tensor(encoded)
    kept = np.flatnonzero(decoded)
    top = np.argsort(np.abs(array).reshape(-1), kind="stable")[-k:]
    assert set(kept) == set(top)
    np.testing.assert_array_equal(decoded.reshape(-1)[kept], array.reshape(-1)[kept])
    assert encoded.nbytes == k * (4 + array.itemsize) < array.nbytes


def test_sparsity_of_big_endian_and_strided_floats() -> None:
    array = _weights((30, 30), "float64").astype(">f8")[:, ::2]
    decoded = decode_tensor(SparsityPipeline(0.5).encode(array))
    kept = np.flatnonzero(decoded)
    np.testing.assert_array_equal(decoded.reshape(-1)[kept], array.reshape(-1)[kept])


@pytest.mark.parametrize(
    "array",
    [
        np.arange(1000, dtype=np.int64),  # not float
        np.ones(10, dtype=np.float32),  # tiny
        (np.ones(100) + 1j).astype(np.complex64),  # complex
    ],
)
def test_sparsity_sends_raw_what_it_should_not_sparsify(array: np.ndarray) -> None:
    encoded = SparsityPipeline(0.1).encode(array)
    assert encoded.encoding == "raw"
    np.testing.assert_array_equal(decode_tensor(encoded), array)


def test_sparsity_that_would_not_save_goes_raw() -> None:
    encoded = SparsityPipeline(0.6).encode(_weights((100,), "float32"))
    assert encoded.encoding == "raw"


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5])
def test_sparsity_setting_is_validated(bad: float) -> None:
    with pytest.raises(ValueError, match="p_sparsity"):
        SparsityPipeline(bad)


@pytest.mark.parametrize(
    ("n_bits", "dtype"), [(8, "float32"), (4, "float32"), (2, "float64"), (12, "float64")]
)
def test_quantization_error_bound(n_bits: int, dtype: str) -> None:
    array = _weights((64, 32), dtype) * 3
    encoded = QuantizationPipeline(n_bits).encode(array)
    assert encoded.encoding == "quant"
    scale = (float(array.max()) - float(array.min())) / (2**n_bits - 1)
    assert encoded.params["scale"] == pytest.approx(scale)
    error = np.abs(decode_tensor(encoded).astype(np.float64) - array)
    assert error.max() <= scale / 2 * (1 + 1e-4) + 1e-6
    assert encoded.nbytes == array.size * (1 if n_bits <= 8 else 2)


def test_quantization_saves_three_quarters_of_float32() -> None:
    tensors = [_weights((64, 32), seed=i) for i in range(3)] + [np.arange(5, dtype=np.int64)]
    encoded = [QuantizationPipeline().encode(t) for t in tensors]
    raw, sent = compression_report(encoded)
    assert raw == sum(t.nbytes for t in tensors)
    assert sent == 3 * 64 * 32 + 5 * 8


def test_quantization_of_a_constant_tensor_is_exact() -> None:
    array = np.full((8, 8), -2.5, dtype=np.float32)
    encoded = QuantizationPipeline().encode(array)
    assert encoded.params["scale"] == 0
    np.testing.assert_array_equal(decode_tensor(encoded), array)


@pytest.mark.parametrize("bad_value", [np.nan, np.inf])
def test_quantization_sends_non_finite_tensors_raw(bad_value: float) -> None:
    array = _weights()
    array[3, 3] = bad_value
    encoded = QuantizationPipeline().encode(array)
    assert encoded.encoding == "raw"
    np.testing.assert_array_equal(decode_tensor(encoded), array)


def test_quantization_that_would_not_save_goes_raw() -> None:
    assert QuantizationPipeline(12).encode(_weights(dtype="float16")).encoding == "raw"


@pytest.mark.parametrize("bad", [0, 17, True, 8.0])
def test_quantization_setting_is_validated(bad: object) -> None:
    with pytest.raises(ValueError, match="n_bits"):
        QuantizationPipeline(bad)  # type: ignore[arg-type]


# --- untrusted input: the aggregator decodes what collaborators send -------------------------------


def _sparse() -> EncodedTensor:
    return SparsityPipeline(0.1).encode(_weights((20, 10)))


def _quant(n_bits: int = 4) -> EncodedTensor:
    return QuantizationPipeline(n_bits).encode(_weights((20, 10)))


def _raw() -> EncodedTensor:
    return NoCompressionPipeline().encode(_weights((20, 10)))


def _sparse_with_indices(indices: list[int]) -> EncodedTensor:
    good = _sparse()
    k = len(indices)
    payload = np.array(indices, dtype="<i4").tobytes() + np.ones(k, dtype="<f4").tobytes()
    return dataclasses.replace(good, payload=payload, params={**good.params, "k": k})


HOSTILE = {
    "unknown encoding": (lambda: dataclasses.replace(_raw(), encoding="pickle"), "unknown tensor encoding"),
    "object dtype": (lambda: dataclasses.replace(_raw(), dtype="object"), "unknown tensor dtype"),
    "negative shape": (lambda: dataclasses.replace(_raw(), shape=(-20, -10)), "shape"),
    "raw_nbytes lies": (lambda: dataclasses.replace(_raw(), raw_nbytes=1), "raw_nbytes"),
    "raw short payload": (lambda: dataclasses.replace(_raw(), payload=b"\0" * 12), "needs 800 bytes"),
    "raw with params": (lambda: dataclasses.replace(_raw(), params={"x": 1}), "params"),
    "raw payload not bytes": (lambda: dataclasses.replace(_raw(), payload="abc"), "bytes-like"),  # type: ignore[arg-type]
    "sparse index too big": (lambda: _sparse_with_indices([1, 5, 200]), "within 0..199"),
    "sparse negative index": (lambda: _sparse_with_indices([-1, 5]), "within"),
    "sparse duplicate index": (lambda: _sparse_with_indices([3, 3]), "strictly increasing"),
    "sparse unsorted": (lambda: _sparse_with_indices([9, 3]), "strictly increasing"),
    "sparse k too big": (
        lambda: dataclasses.replace(_sparse(), params={"k": 10**9, "index_dtype": "int32"}),
        "k must be an integer in 0..200",
    ),
    "sparse k lies": (
        lambda: dataclasses.replace(_sparse(), params={"k": 3, "index_dtype": "int32"}),
        "does not hold 3",
    ),
    "sparse index dtype": (
        lambda: dataclasses.replace(_sparse(), params={"k": 20, "index_dtype": "float32"}),
        "index_dtype",
    ),
    "sparse missing params": (lambda: dataclasses.replace(_sparse(), params={}), "takes params"),
    "sparse int tensor": (lambda: dataclasses.replace(_sparse(), dtype="int32"), "float tensors"),
    "sparse payload cut": (
        lambda: dataclasses.replace(_sparse(), payload=bytes(_sparse().payload)[:-1]),
        "does not hold",
    ),
    "quant code above levels": (
        lambda: dataclasses.replace(_quant(4), payload=b"\xff" * 200),
        "code above 15",
    ),
    "quant nan scale": (
        lambda: dataclasses.replace(_quant(), params={**_quant().params, "scale": math.nan}),
        "finite",
    ),
    "quant negative scale": (
        lambda: dataclasses.replace(_quant(), params={**_quant().params, "scale": -1.0}),
        "scale must be >= 0",
    ),
    "quant overflow": (
        lambda: dataclasses.replace(_quant(), params={**_quant().params, "scale": 1e300}),
        "overflow",
    ),
    "quant n_bits 0": (
        lambda: dataclasses.replace(_quant(), params={**_quant().params, "n_bits": 0}),
        "n_bits",
    ),
    "quant n_bits str": (
        lambda: dataclasses.replace(_quant(), params={**_quant().params, "n_bits": "8"}),
        "n_bits",
    ),
    "quant short payload": (lambda: dataclasses.replace(_quant(), payload=b"\0" * 199), "needs 200 bytes"),
    "quant bool tensor": (
        lambda: dataclasses.replace(_quant(), dtype="bool", raw_nbytes=200),
        "float tensors",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_input_is_refused(case: str) -> None:
    make, message = HOSTILE[case]
    with pytest.raises(ValueError, match=message):
        decode_tensor(make())


def test_decoded_size_can_be_capped() -> None:
    huge = EncodedTensor(
        "sparse", b"", {"k": 0, "index_dtype": "int32"}, "float64", (10**6, 10**6), 8 * 10**12
    )
    with pytest.raises(ValueError, match="exceeds the limit"):
        decode_tensor(huge, max_nbytes=1 << 30)
    np.testing.assert_array_equal(decode_tensor(_raw(), max_nbytes=800), decode_tensor(_raw()))
