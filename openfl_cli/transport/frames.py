"""The bytes of one stream message (ModelMessage / ResultMessage in federation.proto), by hand for chunks.

Python protobuf only takes `bytes` for a bytes field and copies it twice on the way out (into the
message, then into the serialization) and twice on the way in. Chunks are the bulk of the traffic, so
they are framed here directly: sending joins the frame prefix and the payload slices in one copy;
receiving hands out a memoryview into the received message without copying. Headers (small, rich) go
through the generated classes. The result is byte-for-byte valid protobuf of the same schema.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from google.protobuf.message import DecodeError, Message

from openfl_cli.tensors.wire import encode_tag, encode_varint

_VARINT = 0
_FIXED64 = 1
_LENGTH_DELIMITED = 2
_FIXED32 = 5

HEADER_FIELD = 1  # `header` in the oneof of ModelMessage and ResultMessage
CHUNK_FIELD = 2  # `chunk`
_OFFSET_FIELD = 1  # Chunk.offset
_DATA_FIELD = 2  # Chunk.data

H = TypeVar("H", bound=Message)


@dataclass(frozen=True)
class ChunkFrame:
    offset: int
    data: memoryview


@dataclass(frozen=True)
class HeaderFrame(Generic[H]):
    header: H
    size: int  # serialized bytes, for limits


@dataclass(frozen=True)
class Malformed:
    """What a deserializer returns instead of raising: gRPC would hide the reason behind a generic error."""

    reason: str


def _tag(field: int, wire_type: int) -> bytes:
    return encode_tag(field, wire_type)


_CHUNK_TAG = _tag(CHUNK_FIELD, _LENGTH_DELIMITED)
_OFFSET_TAG = _tag(_OFFSET_FIELD, _VARINT)
_DATA_TAG = _tag(_DATA_FIELD, _LENGTH_DELIMITED)


def encode_chunk(offset: int, pieces: Sequence[memoryview]) -> bytes:
    """A chunk message whose data is the concatenation of `pieces` (one copy, here)."""
    size = sum(piece.nbytes for piece in pieces)
    inner_prefix = _OFFSET_TAG + encode_varint(offset) + _DATA_TAG + encode_varint(size)
    inner_size = len(inner_prefix) + size
    return b"".join((_CHUNK_TAG, encode_varint(inner_size), inner_prefix, *pieces))


def encode_header(message: Message) -> bytes:
    """A stream message holding `message` as its header (the stream's first message)."""
    body = message.SerializeToString()
    return _tag(HEADER_FIELD, _LENGTH_DELIMITED) + encode_varint(len(body)) + body


class _Reader:
    def __init__(self, view: memoryview) -> None:
        self.view = view
        self.pos = 0

    def done(self) -> bool:
        return self.pos >= self.view.nbytes

    def varint(self) -> int:
        value = shift = 0
        while True:
            if self.pos >= self.view.nbytes or shift > 63:
                raise ValueError("truncated or overlong varint")
            byte = self.view[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7

    def take(self, size: int) -> memoryview:
        end = self.pos + size
        if end > self.view.nbytes:
            raise ValueError("field runs past the end of the message")
        out = self.view[self.pos : end]
        self.pos = end
        return out

    def field(self) -> tuple[int, int, int | memoryview]:
        """(field number, wire type, value) of the next field."""
        key = self.varint()
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise ValueError("field number 0")
        if wire_type == _VARINT:
            return number, wire_type, self.varint()
        if wire_type == _LENGTH_DELIMITED:
            return number, wire_type, self.take(self.varint())
        if wire_type == _FIXED64:
            return number, wire_type, self.take(8)
        if wire_type == _FIXED32:
            return number, wire_type, self.take(4)
        raise ValueError(f"unsupported wire type {wire_type}")


def decode_message(raw: bytes, header_type: type[H]) -> HeaderFrame[H] | ChunkFrame | Malformed:
    """Parse one stream message; never raises (malformed input becomes `Malformed`)."""
    try:
        reader = _Reader(memoryview(raw))
        number, wire_type, value = reader.field()
        if not reader.done():
            raise ValueError("a stream message holds exactly one header or chunk")
        if wire_type != _LENGTH_DELIMITED or not isinstance(value, memoryview):
            raise ValueError(f"field {number} has the wrong wire type")
        if number == HEADER_FIELD:
            # protobuf parses any buffer; the stubs declare bytes only
            return HeaderFrame(header_type.FromString(value), value.nbytes)  # type: ignore[arg-type]
        if number == CHUNK_FIELD:
            return _decode_chunk(value)
        raise ValueError(f"unknown field {number}")
    except (ValueError, DecodeError) as exc:
        return Malformed(f"malformed stream message: {exc}")


def _decode_chunk(view: memoryview) -> ChunkFrame:
    reader = _Reader(view)
    offset = 0
    data = memoryview(b"")
    while not reader.done():
        number, wire_type, value = reader.field()
        if number == _OFFSET_FIELD and wire_type == _VARINT and isinstance(value, int):
            offset = value
        elif number == _DATA_FIELD and wire_type == _LENGTH_DELIMITED and isinstance(value, memoryview):
            data = value
        # other fields: unknown to this version, skipped as protobuf does
    if offset >= 1 << 63:
        raise ValueError("negative chunk offset")
    return ChunkFrame(offset, data)
