"""Validation of announced tensors and reassembly from chunks (no network)."""

from __future__ import annotations

import numpy as np
import pytest

from openfl_cli.proto import federation_pb2 as pb
from openfl_cli.tensors.pipelines import QuantizationPipeline, SparsityPipeline
from openfl_cli.transport.assembly import (
    Assembler,
    StreamError,
    TensorInfo,
    check_against_model,
    encoded_header,
    raw_entries,
    tensor_infos,
)
from openfl_cli.transport.chunking import chunk_messages
from openfl_cli.transport.frames import ChunkFrame, decode_message
from openfl_cli.transport.limits import Limits

LIMITS = Limits(chunk_bytes=16, max_message_bytes=1024, max_tensors=4)


def _header(**fields: object) -> pb.TensorHeader:
    base: dict[str, object] = {
        "name": "w",
        "dtype": "float32",
        "shape": [2, 3],
        "encoding": "raw",
        "nbytes": 24,
        "raw_nbytes": 24,
    }
    base.update(fields)
    return pb.TensorHeader(**base)  # type: ignore[arg-type]


def _assemble(tensors: dict[str, np.ndarray], chunk_bytes: int = 16) -> dict[str, np.ndarray]:
    headers, payloads = raw_entries(tensors)
    infos = tensor_infos(headers, LIMITS, max_total=None)
    out: dict[str, np.ndarray] = {}
    assembler = Assembler(infos, out.__setitem__)
    for message in chunk_messages(payloads, chunk_bytes):
        frame = decode_message(message, pb.ModelHeader)
        assert isinstance(frame, ChunkFrame)
        assembler.feed(frame)
    assembler.finish()
    return out


def test_reassembles_tensors_across_chunk_boundaries() -> None:
    tensors = {
        "empty": np.zeros((0, 4), dtype=np.float64),
        "scalar": np.array(3.5, dtype=np.float16),
        "matrix": np.arange(30, dtype=np.int32).reshape(5, 6),
        "flags": np.array([True, False, True]),
    }
    out = _assemble(tensors, chunk_bytes=7)
    assert list(out) == list(tensors)
    for name, array in tensors.items():
        assert out[name].dtype == array.dtype and out[name].shape == array.shape
        np.testing.assert_array_equal(out[name], array)
        assert out[name].flags.writeable


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"dtype": "object"}, "unknown tensor dtype"),
        ({"dtype": ""}, "unknown tensor dtype"),
        ({"shape": [-1, 3]}, "negative dimension"),
        ({"shape": [1] * 33}, "rank 33"),
        ({"raw_nbytes": 25}, "raw_nbytes 25"),
        ({"nbytes": 23}, "raw payload of 23 bytes"),
        ({"encoding": "pickle"}, "unknown encoding"),
        ({"encoding": "quant", "nbytes": 25}, "exceeds its raw size"),
        ({"name": ""}, "tensor name"),
        ({"name": "x" * 2000}, "tensor name"),
        ({"shape": [1 << 40, 1 << 40], "nbytes": 0, "raw_nbytes": 0}, "raw_nbytes 0"),
    ],
)
def test_bad_announcements_are_refused(fields: dict[str, object], reason: str) -> None:
    with pytest.raises(StreamError, match=reason):
        tensor_infos([_header(**fields)], LIMITS, max_total=None)


def test_announcement_totals_are_bounded() -> None:
    with pytest.raises(StreamError, match="announced twice"):
        tensor_infos([_header(), _header()], LIMITS, max_total=None)
    with pytest.raises(StreamError, match="more than 4 tensors"):
        tensor_infos([_header(name=f"t{i}") for i in range(5)], LIMITS, max_total=None)
    with pytest.raises(StreamError, match="exceed the limit of 40 bytes"):
        tensor_infos([_header(name="a"), _header(name="b")], LIMITS, max_total=40)


def _one_tensor_assembler(nbytes: int = 24) -> tuple[Assembler, list[str]]:
    got: list[str] = []
    info = TensorInfo("w", "uint8", (nbytes,), "raw", {}, nbytes, nbytes)
    return Assembler([info], lambda name, _array: got.append(name)), got


def test_chunk_overflow_underflow_and_gaps_are_refused() -> None:
    assembler, _ = _one_tensor_assembler()
    with pytest.raises(StreamError, match="overflows"):
        assembler.feed(ChunkFrame(0, memoryview(bytes(25))))

    assembler, got = _one_tensor_assembler()
    assembler.feed(ChunkFrame(0, memoryview(bytes(10))))
    with pytest.raises(StreamError, match="offset 11, expected 10"):
        assembler.feed(ChunkFrame(11, memoryview(bytes(5))))
    with pytest.raises(StreamError, match="empty chunk"):
        assembler.feed(ChunkFrame(10, memoryview(b"")))
    with pytest.raises(StreamError, match="after 10 of 24"):
        assembler.finish()
    assert got == []


def test_compressed_encodings_are_decoded() -> None:
    rng = np.random.default_rng(1)
    array = rng.standard_normal((64, 8)).astype(np.float32)
    for pipeline in (SparsityPipeline(p_sparsity=0.25), QuantizationPipeline(n_bits=8)):
        encoded = pipeline.encode(array)
        assert encoded.encoding != "raw"
        infos = tensor_infos([encoded_header("w", encoded)], Limits(), max_total=None)
        out: dict[str, np.ndarray] = {}
        assembler = Assembler(infos, out.__setitem__)
        assembler.feed(ChunkFrame(0, memoryview(encoded.payload).cast("B")))
        assembler.finish()
        assert out["w"].shape == array.shape and out["w"].dtype == array.dtype


def test_corrupt_compressed_payload_is_refused() -> None:
    encoded = QuantizationPipeline(n_bits=4).encode(np.linspace(0, 1, 64, dtype=np.float32))
    infos = tensor_infos([encoded_header("w", encoded)], Limits(), max_total=None)
    assembler = Assembler(infos, lambda *_: None)
    with pytest.raises(StreamError, match="tensor 'w'"):
        assembler.feed(ChunkFrame(0, memoryview(b"\xff" * encoded.nbytes)))


def test_result_must_match_the_model() -> None:
    model = {"w": np.zeros((2, 3), dtype=np.float32)}
    check_against_model(tensor_infos([_header()], LIMITS, None), model)
    with pytest.raises(StreamError, match="unknown tensor 'v'"):
        check_against_model(tensor_infos([_header(name="v")], LIMITS, None), model)
    wrong = _header(dtype="int32", shape=[6], raw_nbytes=24)
    with pytest.raises(StreamError, match="is int32 \\[6\\], the model has float32 \\[2, 3\\]"):
        check_against_model(tensor_infos([wrong], LIMITS, None), model)


def test_supplied_destinations_receive_raw_tensors_and_are_handed_over_as_is() -> None:
    tensors = {
        "matrix": np.arange(30, dtype=np.float32).reshape(5, 6),
        "odd": np.arange(7, dtype=np.float64),
        "wrong_size": np.arange(4, dtype=np.int16),
    }
    supplied = {
        "matrix": np.zeros((5, 6), np.float32),
        "odd": np.zeros(7, np.float64)[::1],
        "wrong_size": np.zeros(5, np.int16),  # not the announced size: ignored
    }
    headers, payloads = raw_entries(tensors)
    infos = tensor_infos(headers, LIMITS, max_total=None)
    out: dict[str, np.ndarray] = {}
    assembler = Assembler(infos, out.__setitem__, reuse_buffer=True, destination=supplied.get)
    for message in chunk_messages(payloads, 5):  # chunks cut elements apart
        frame = decode_message(message, pb.ModelHeader)
        assert isinstance(frame, ChunkFrame)
        assembler.feed(frame)
    assembler.finish()
    assert out["matrix"] is supplied["matrix"] and out["odd"] is supplied["odd"]
    assert out["wrong_size"] is not supplied["wrong_size"]
    for name, value in tensors.items():
        np.testing.assert_array_equal(out[name], value)


def test_encoded_tensors_ignore_supplied_destinations() -> None:
    value = np.linspace(-1, 1, 64, dtype=np.float32)
    encoded = QuantizationPipeline(n_bits=8).encode(value)
    infos = tensor_infos([encoded_header("w", encoded)], Limits(), max_total=None)
    asked: list[str] = []

    def destination(tensor: str) -> np.ndarray:
        asked.append(tensor)
        return np.zeros(64, np.float32)

    out: dict[str, np.ndarray] = {}
    assembler = Assembler(infos, out.__setitem__, destination=destination)
    assembler.feed(ChunkFrame(0, memoryview(encoded.payload).cast("B")))
    assembler.finish()
    assert asked == []
    np.testing.assert_allclose(out["w"], value, atol=0.01)


def test_a_destination_in_another_byte_order_is_not_used() -> None:
    value = np.arange(6, dtype=np.float32)
    headers, payloads = raw_entries({"w": value})
    infos = tensor_infos(headers, LIMITS, max_total=None)
    big_endian = np.zeros(6, dtype=">f4")
    out: dict[str, np.ndarray] = {}
    assembler = Assembler(infos, out.__setitem__, destination=lambda _name: big_endian)
    for message in chunk_messages(payloads, 16):
        frame = decode_message(message, pb.ModelHeader)
        assert isinstance(frame, ChunkFrame)
        assembler.feed(frame)
    assembler.finish()
    assert out["w"] is not big_endian
    np.testing.assert_array_equal(out["w"], value)
