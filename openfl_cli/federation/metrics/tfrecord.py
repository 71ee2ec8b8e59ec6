"""TFRecord framing: uint64 length, masked CRC of the length, data, masked CRC of the data (little-endian)."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import BinaryIO

from openfl_cli.federation.metrics.crc32c import masked_crc32c


class CorruptRecordError(ValueError):
    """A record whose length or CRC does not check out."""


def frame_record(data: bytes) -> bytes:
    length = struct.pack("<Q", len(data))
    return b"".join(
        (length, struct.pack("<I", masked_crc32c(length)), data, struct.pack("<I", masked_crc32c(data)))
    )


def read_records(handle: BinaryIO) -> Iterator[bytes]:
    """The records of a TFRecord stream, CRCs verified. A torn last record (a writer killed
    mid-write) ends the iteration; a bad CRC raises."""
    while True:
        header = handle.read(12)
        if len(header) < 12:
            return
        length_bytes, length_crc = header[:8], struct.unpack("<I", header[8:])[0]
        if masked_crc32c(length_bytes) != length_crc:
            raise CorruptRecordError("record length CRC mismatch")
        (length,) = struct.unpack("<Q", length_bytes)
        data = handle.read(length)
        footer = handle.read(4)
        if len(data) < length or len(footer) < 4:
            return
        if masked_crc32c(data) != struct.unpack("<I", footer)[0]:
            raise CorruptRecordError("record data CRC mismatch")
        yield data
