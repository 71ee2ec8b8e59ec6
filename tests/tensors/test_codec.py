"""The ndarray <-> bytes codec: every dtype, odd shapes and layouts, refusals."""

from __future__ import annotations

import numpy as np
import pytest

from openfl_cli.tensors.codec import (
    SUPPORTED_DTYPES,
    array_bytes,
    array_from_buffer,
    dtype_from_name,
    dtype_name,
)

SHAPES = [(), (0,), (3, 0, 2), (1,), (5,), (2, 3, 4)]


def _sample(name: str, shape: tuple[int, ...]) -> np.ndarray:
    dtype = np.dtype(name)
    values = np.arange(int(np.prod(shape)), dtype=np.int64) * 7 - 3
    if dtype.kind == "c":
        return (values + 1j * values[::-1]).astype(dtype).reshape(shape)
    if dtype.kind == "b":
        return (values % 2 == 0).reshape(shape)
    return values.astype(dtype).reshape(shape)


@pytest.mark.parametrize("name", SUPPORTED_DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_round_trip_every_dtype_and_shape(name: str, shape: tuple[int, ...]) -> None:
    array = _sample(name, shape)
    data = array_bytes(array)
    assert data.nbytes == array.size * array.itemsize
    back = array_from_buffer(data, dtype_name(array.dtype), array.shape)
    assert back.dtype == array.dtype and back.shape == shape
    np.testing.assert_array_equal(back, array)


def test_names_cover_the_agreed_set() -> None:
    assert set(SUPPORTED_DTYPES) == {
        "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
        "float16", "float32", "float64", "complex64", "complex128",
    }  # fmt: skip
    for name in SUPPORTED_DTYPES:
        assert dtype_name(dtype_from_name(name)) == name
        assert dtype_from_name(name).byteorder in ("<", "|", "=")


@pytest.mark.parametrize("bad", [object, "U5", "S3", "V8", "datetime64[s]", [("a", "<f4")], ("<f4", (2,))])
def test_unsupported_dtypes_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="unsupported tensor dtype"):
        dtype_name(bad)  # type: ignore[arg-type]
    array = np.zeros(2, dtype=bad)  # type: ignore[call-overload]
    if array.dtype == np.dtype(bad):  # numpy folds a subarray dtype into the shape
        with pytest.raises(ValueError):
            array_bytes(array)


@pytest.mark.parametrize("name", ["object", "O", "float128", "", "FLOAT32", "<f4", None])
def test_unknown_names_are_refused(name: object) -> None:
    with pytest.raises(ValueError, match="unknown tensor dtype"):
        dtype_from_name(name)  # type: ignore[arg-type]


def test_contiguous_little_endian_is_not_copied() -> None:
    array = np.arange(12, dtype="<f4").reshape(3, 4)
    data = array_bytes(array)
    array[0, 0] = 42.0
    assert np.frombuffer(data, dtype="<f4")[0] == 42.0


def test_non_contiguous_input() -> None:
    base = np.arange(40, dtype=np.float64).reshape(5, 8)
    view = base[::2, 1::3].T
    back = array_from_buffer(array_bytes(view), "float64", view.shape)
    np.testing.assert_array_equal(back, view)


def test_big_endian_input_becomes_little_endian() -> None:
    array = np.arange(6, dtype=">i4").reshape(2, 3)
    data = array_bytes(array)
    assert bytes(data[:4]) == (0).to_bytes(4, "little") and bytes(data[4:8]) == (1).to_bytes(4, "little")
    assert dtype_name(array.dtype) == "int32"
    np.testing.assert_array_equal(array_from_buffer(data, "int32", (2, 3)), array)


def test_from_buffer_is_zero_copy_and_follows_writability() -> None:
    buffer = bytearray(np.arange(4, dtype="<i2").tobytes())
    array = array_from_buffer(buffer, "int16", (2, 2))
    assert array.flags.writeable
    buffer[0] = 9
    assert array[0, 0] == 9
    frozen = array_from_buffer(bytes(buffer), "int16", (4,))
    assert not frozen.flags.writeable


@pytest.mark.parametrize(
    ("size", "shape"), [(15, (2, 2)), (17, (2, 2)), (0, (1,)), (16, (5,)), (3, ()), (8, ())]
)
def test_size_mismatch_is_refused(size: int, shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="needs"):
        array_from_buffer(b"\0" * size, "float32", shape)


@pytest.mark.parametrize("shape", [(-1,), (2.0,), ("3",), (True,), 5])
def test_bad_shapes_are_refused(shape: object) -> None:
    with pytest.raises(ValueError, match="shape"):
        array_from_buffer(b"", "float32", shape)  # type: ignore[arg-type]


def test_non_array_and_non_buffer_inputs() -> None:
    with pytest.raises(TypeError):
        array_bytes([1.0, 2.0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="bytes-like"):
        array_from_buffer("abcd", "uint8", (4,))
