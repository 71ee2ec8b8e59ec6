"""Just enough of the protobuf wire format to stream messages bigger than protobuf's 2 GiB limit.

A serialized message is a sequence of (tag, payload) fields, and concatenated serializations merge.
The snapshot writer relies on the first fact to write each tensor's bytes straight from the array,
the reader on both to fill each tensor's buffer straight from the file.
"""

from __future__ import annotations

from typing import BinaryIO

VARINT = 0
FIXED64 = 1
LENGTH_DELIMITED = 2
FIXED32 = 5

_MAX_VARINT_BYTES = 10


class WireError(ValueError):
    """The bytes are not a well-formed protobuf stream (truncated or corrupt)."""


def encode_varint(value: int) -> bytes:
    if value < 0:
        raise ValueError("varints here are unsigned")
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def encode_tag(field_number: int, wire_type: int) -> bytes:
    return encode_varint(field_number << 3 | wire_type)


class FieldReader:
    """Reads fields from a binary stream, never past `limit` bytes; counts what it consumed."""

    def __init__(self, stream: BinaryIO, limit: int) -> None:
        self._stream = stream
        self.remaining = limit

    def child(self, size: int) -> FieldReader:
        """A reader for the next `size` bytes (an embedded message); they count as consumed here."""
        self._reserve(size)
        return FieldReader(self._stream, size)

    def read_exact(self, size: int) -> bytes:
        self._reserve(size)
        data = self._stream.read(size)
        if len(data) != size:
            raise WireError("file ends in the middle of a field (truncated)")
        return data

    def read_into(self, buffer: memoryview) -> None:
        """Fill `buffer` completely from the stream (no intermediate copy)."""
        self._reserve(buffer.nbytes)
        filled = 0
        while filled < buffer.nbytes:
            count = self._stream.readinto(buffer[filled:])  # type: ignore[attr-defined]
            if not count:
                raise WireError("file ends in the middle of a tensor (truncated)")
            filled += count

    def read_varint(self) -> tuple[int, bytes]:
        """A varint's value and its raw bytes."""
        raw = bytearray()
        while True:
            byte = self.read_exact(1)[0]
            raw.append(byte)
            if not byte & 0x80:
                break
            if len(raw) >= _MAX_VARINT_BYTES:
                raise WireError("malformed varint")
        value = 0
        for shift, part in enumerate(raw):
            value |= (part & 0x7F) << (7 * shift)
        return value, bytes(raw)

    def read_tag(self) -> tuple[int, int, bytes] | None:
        """(field number, wire type, raw tag bytes), or None at the clean end of the stream."""
        if self.remaining == 0:
            return None
        key, raw = self.read_varint()
        field_number, wire_type = key >> 3, key & 0x7
        if field_number == 0 or wire_type not in (VARINT, FIXED64, LENGTH_DELIMITED, FIXED32):
            raise WireError(f"invalid field key {key}")
        return field_number, wire_type, raw

    def read_length(self) -> int:
        length, _ = self.read_varint()
        if length > self.remaining:
            raise WireError(f"a field claims {length} bytes but only {self.remaining} remain (truncated)")
        return length

    def read_raw_value(self, wire_type: int) -> bytes:
        """The raw encoded value of a field of `wire_type` (length prefix included)."""
        if wire_type == VARINT:
            return self.read_varint()[1]
        if wire_type == FIXED64:
            return self.read_exact(8)
        if wire_type == FIXED32:
            return self.read_exact(4)
        length = self.read_length()
        return encode_varint(length) + self.read_exact(length)

    def _reserve(self, size: int) -> None:
        if size > self.remaining:
            raise WireError(f"the data ends {size - self.remaining} bytes short, inside a field (truncated)")
        self.remaining -= size
