"""Cut the payloads of a list of tensors into chunks of at most `chunk_bytes`, without copying them.

The payloads, in order, form one byte sequence; chunk i covers bytes [i * chunk_bytes, (i+1) * chunk_bytes)
of it. A chunk may hold the end of one tensor and the start of the next (small tensors share a message),
and a large tensor spans as many chunks as it needs, so no message size depends on the tensor size.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from openfl_cli.transport.frames import encode_chunk


@dataclass(frozen=True)
class Piece:
    """Bytes [start, stop) of tensor `index`'s payload."""

    index: int
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class ChunkPlan:
    offset: int  # position of the chunk's first byte in the whole sequence
    pieces: tuple[Piece, ...]

    @property
    def size(self) -> int:
        return sum(piece.size for piece in self.pieces)


def plan_chunks(sizes: Sequence[int], chunk_bytes: int) -> Iterator[ChunkPlan]:
    """The chunks that carry payloads of `sizes` bytes; pure arithmetic (no buffers), so it can be
    checked against sizes far beyond memory. Empty payloads take no piece; no chunk is empty."""
    if chunk_bytes < 1:
        raise ValueError(f"chunk_bytes must be >= 1, got {chunk_bytes}")
    offset = 0
    pieces: list[Piece] = []
    room = chunk_bytes
    for index, size in enumerate(sizes):
        if size < 0:
            raise ValueError(f"payload {index} has a negative size {size}")
        start = 0
        while start < size:
            stop = min(size, start + room)
            pieces.append(Piece(index, start, stop))
            room -= stop - start
            start = stop
            if room == 0:
                yield ChunkPlan(offset, tuple(pieces))
                offset += chunk_bytes
                pieces, room = [], chunk_bytes
    if pieces:
        yield ChunkPlan(offset, tuple(pieces))


def chunk_messages(payloads: Sequence[memoryview], chunk_bytes: int) -> Iterator[bytes]:
    """Encoded chunk messages carrying `payloads` (flat byte views) in order."""
    flat = [memoryview(payload).cast("B") for payload in payloads]
    for chunk in plan_chunks([view.nbytes for view in flat], chunk_bytes):
        yield encode_chunk(chunk.offset, [flat[p.index][p.start : p.stop] for p in chunk.pieces])
