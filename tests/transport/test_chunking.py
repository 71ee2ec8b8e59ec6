"""The chunk planner and the hand-made chunk frames (no network)."""

from __future__ import annotations

import numpy as np
import pytest

from openfl_cli.proto import federation_pb2 as pb
from openfl_cli.transport.chunking import chunk_messages, plan_chunks
from openfl_cli.transport.frames import (
    ChunkFrame,
    HeaderFrame,
    Malformed,
    decode_message,
    encode_chunk,
    encode_header,
)
from openfl_cli.transport.limits import FRAME_OVERHEAD, MIB, Limits

GIB = 1 << 30


def _check_plan(sizes: list[int], chunk_bytes: int) -> int:
    """Every byte of every payload is covered once, in order, by chunks of at most chunk_bytes."""
    expected_offset = 0
    cursor = [0] * len(sizes)
    last_index = -1
    chunks = 0
    for chunk in plan_chunks(sizes, chunk_bytes):
        assert chunk.offset == expected_offset
        assert 0 < chunk.size <= chunk_bytes
        for piece in chunk.pieces:
            assert piece.index >= last_index and piece.start == cursor[piece.index]
            assert piece.size > 0 and piece.stop <= sizes[piece.index]
            cursor[piece.index] = piece.stop
            last_index = piece.index
        expected_offset += chunk.size
        chunks += 1
    assert cursor == sizes
    assert expected_offset == sum(sizes)
    return chunks


@pytest.mark.parametrize(
    "sizes",
    [[], [0], [0, 0, 5], [1, 2, 3, 4, 5, 6, 7], [10], [9], [11], [30, 0, 1, 19], [100, 3]],
)
def test_plan_covers_every_byte_once(sizes: list[int]) -> None:
    _check_plan(sizes, chunk_bytes=10)


def test_plan_for_tensors_over_2_gib_stays_within_limits() -> None:
    # Sizes only: nothing is allocated. A 3 GiB tensor (beyond protobuf's 2 GiB message limit) and a
    # model of ~5.5 GiB are cut into chunks no bigger than chunk_bytes, and each frame stays below the
    # receiver's message limit even at offsets beyond 2**32.
    limits = Limits(chunk_bytes=4 * MIB)
    sizes = [3 * GIB, 5, 0, 2 * GIB + GIB // 2 + 7]
    chunks = _check_plan(sizes, limits.chunk_bytes)
    assert chunks == -(-sum(sizes) // limits.chunk_bytes)
    frame_prefix = len(encode_chunk(6 * GIB, [])) + len(encode_chunk(0, [memoryview(b"x" * 5)])) - 5
    assert (
        limits.chunk_bytes + frame_prefix <= limits.chunk_bytes + FRAME_OVERHEAD <= limits.max_message_bytes
    )


def test_plan_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError):
        list(plan_chunks([1], 0))
    with pytest.raises(ValueError):
        list(plan_chunks([-1], 4))


def test_chunk_messages_concatenate_to_the_payloads() -> None:
    payloads = [memoryview(np.arange(n, dtype=np.uint8)) for n in (0, 7, 13, 1, 0, 25)]
    received = bytearray()
    for message in chunk_messages(payloads, 8):
        frame = decode_message(message, pb.ResultHeader)
        assert isinstance(frame, ChunkFrame) and frame.offset == len(received)
        assert frame.data.nbytes <= 8
        received += frame.data
    assert bytes(received) == b"".join(bytes(p) for p in payloads)


def test_hand_frames_are_protobuf() -> None:
    raw = encode_chunk(1 << 40, [memoryview(b"abc"), memoryview(b"de")])
    parsed = pb.ResultMessage.FromString(raw)
    assert parsed.WhichOneof("kind") == "chunk"
    assert (parsed.chunk.offset, parsed.chunk.data) == (1 << 40, b"abcde")

    generated = pb.ModelMessage(chunk=pb.Chunk(offset=9, data=b"xyz")).SerializeToString()
    frame = decode_message(generated, pb.ModelHeader)
    assert isinstance(frame, ChunkFrame) and (frame.offset, bytes(frame.data)) == (9, b"xyz")

    header = pb.ModelHeader(round_number=4, tensors=[pb.TensorHeader(name="w", dtype="float32")])
    assert pb.ModelMessage.FromString(encode_header(header)).header == header
    decoded = decode_message(encode_header(header), pb.ModelHeader)
    assert isinstance(decoded, HeaderFrame) and decoded.header == header


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x12",  # truncated length
        b"\x12\x05ab",  # field runs past the end
        b"\x1a\x00",  # unknown field 3
        b"\x08\x01",  # varint where a message is expected
        b"\x12\x00\x12\x00",  # two fields
        b"\x0a\x03\xff\xff\xff",  # header that is not a valid message
        b"\x12\x02\x08\xff",  # truncated varint inside the chunk
        b"\xff" * 11,  # overlong varint
    ],
)
def test_malformed_messages_are_reported_not_raised(raw: bytes) -> None:
    assert isinstance(decode_message(raw, pb.ModelHeader), Malformed)


def test_limits_check_their_consistency() -> None:
    with pytest.raises(ValueError):
        Limits(chunk_bytes=8 * MIB, max_message_bytes=8 * MIB)
    with pytest.raises(ValueError):
        Limits(max_message_bytes=1 << 31)
