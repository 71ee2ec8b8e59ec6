"""A flow's state as one stream of messages: a header, then the chunks of its tensors.

The state arrives here already split by the wire codec (`workflow/wire.py`) into a pickle without any
array and the arrays themselves. The pickle travels as the first tensor ("pickle", uint8), so that
neither it nor any array ever has to fit in one message: a state of any size streams in chunks, and
each array lands in its own buffer without a copy after reception.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from openfl_cli.proto import director_pb2 as dpb
from openfl_cli.transport.assembly import Assembler, raw_entries, tensor_infos
from openfl_cli.transport.chunking import chunk_messages
from openfl_cli.transport.frames import ChunkFrame, HeaderFrame, Malformed, decode_message, encode_header
from openfl_cli.transport.limits import Limits
from openfl_cli.transport.messages import StreamError

PICKLE_TENSOR = "pickle"

StateFrames = Iterable[HeaderFrame[dpb.StateHeader] | ChunkFrame | Malformed]


@dataclass
class ReceivedState:
    header: dpb.StateHeader
    payload: bytes  # the pickle
    arrays: dict[str, np.ndarray]
    nbytes: int


def decode_state_message(raw: bytes) -> HeaderFrame[dpb.StateHeader] | ChunkFrame | Malformed:
    return decode_message(raw, dpb.StateHeader)


def state_messages(
    header: dpb.StateHeader, payload: bytes, arrays: Mapping[str, np.ndarray], limits: Limits
) -> Iterator[bytes]:
    """The stream of `header` (its tensors filled in here) and the state's bytes."""
    if PICKLE_TENSOR in arrays:
        raise ValueError(f"an array may not be named {PICKLE_TENSOR!r}")
    tensors = {PICKLE_TENSOR: np.frombuffer(payload, dtype=np.uint8), **arrays}
    headers, payloads = raw_entries(tensors)
    stream_header = dpb.StateHeader()
    stream_header.CopyFrom(header)
    del stream_header.tensors[:]
    stream_header.tensors.extend(headers)
    encoded = encode_header(stream_header)
    if len(encoded) > limits.max_message_bytes:
        raise StreamError(f"the state header ({len(encoded)} bytes) exceeds max_message_bytes")
    yield encoded
    yield from chunk_messages(payloads, limits.chunk_bytes)


def read_state(frames: Iterable[object], limits: Limits, *, max_bytes: int | None = None) -> ReceivedState:
    """Read one state stream; StreamError names what is wrong with it. `max_bytes` bounds the
    announced total before a byte of it is allocated."""
    iterator = iter(frames)
    first = next(iterator, None)
    if isinstance(first, Malformed):
        raise StreamError(first.reason)
    if not isinstance(first, HeaderFrame):
        raise StreamError("a state stream must start with its header")
    header: dpb.StateHeader = first.header
    infos = tensor_infos(header.tensors, limits, max_bytes)
    if not infos or infos[0].name != PICKLE_TENSOR or infos[0].dtype != "uint8" or len(infos[0].shape) != 1:
        raise StreamError(f"a state stream's first tensor must be {PICKLE_TENSOR!r} (uint8, 1-d)")
    received: dict[str, np.ndarray] = {}
    assembler = Assembler(infos, received.__setitem__)
    for frame in iterator:
        if isinstance(frame, Malformed):
            raise StreamError(frame.reason)
        if not isinstance(frame, ChunkFrame):
            raise StreamError("a state stream holds one header")
        assembler.feed(frame)
    assembler.finish()
    payload = received.pop(PICKLE_TENSOR).tobytes()
    return ReceivedState(header, payload, received, assembler.received)
