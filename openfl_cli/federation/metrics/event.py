"""Hand-encoded `tensorflow.Event` protos (the few fields TensorBoard scalars need).

Event: 1 wall_time (double), 2 step (int64), 3 file_version (string), 5 summary (Summary).
Summary: 1 value (repeated Summary.Value). Summary.Value: 1 tag (string), 2 simple_value (float).
"""

from __future__ import annotations

import struct

from openfl_cli.tensors.wire import FIXED32, FIXED64, LENGTH_DELIMITED, VARINT, encode_tag, encode_varint

FILE_VERSION = "brain.Event:2"


def _key(field_number: int, wire_type: int) -> bytes:
    return encode_tag(field_number, wire_type)


def _length_delimited(field_number: int, payload: bytes) -> bytes:
    return _key(field_number, LENGTH_DELIMITED) + encode_varint(len(payload)) + payload


def _event(wall_time: float, step: int, body: bytes) -> bytes:
    head = _key(1, FIXED64) + struct.pack("<d", wall_time)
    if step:
        head += _key(2, VARINT) + encode_varint(step % (1 << 64))  # int64: two's complement
    return head + body


def file_version_event(wall_time: float) -> bytes:
    return _event(wall_time, 0, _length_delimited(3, FILE_VERSION.encode()))


def scalar_event(wall_time: float, step: int, tag: str, value: float) -> bytes:
    summary_value = _length_delimited(1, tag.encode("utf-8")) + _key(2, FIXED32) + struct.pack("<f", value)
    summary = _length_delimited(1, summary_value)
    return _event(wall_time, step, _length_delimited(5, summary))
