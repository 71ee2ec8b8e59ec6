"""Tensor headers on the wire, their validation, and rebuilding tensors from received chunks.

The receiver trusts nothing: every announced name, dtype, shape, encoding and size is checked against
`Limits` before a byte is accepted; each tensor's buffer is allocated once, at its announced size, when its
first byte arrives; chunks are copied straight into it through memoryview slices and the finished buffer
becomes an ndarray without another copy (raw encoding) or is decoded (compressed encodings).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from openfl_cli.proto import federation_pb2 as pb
from openfl_cli.tensors.codec import array_bytes, array_from_buffer, dtype_from_name, dtype_name
from openfl_cli.tensors.pipelines import QUANT, RAW, SPARSE, EncodedTensor, ParamValue, decode_tensor
from openfl_cli.transport.frames import ChunkFrame
from openfl_cli.transport.limits import Limits
from openfl_cli.transport.messages import StreamError
from openfl_cli.transport.result_checks import check_tensor_matches

KNOWN_ENCODINGS = frozenset({RAW, SPARSE, QUANT})


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str
    shape: tuple[int, ...]
    encoding: str
    params: Mapping[str, ParamValue]
    nbytes: int
    raw_nbytes: int


# -- building headers (sender) -------------------------------------------------------------------------


def encoded_header(name: str, encoded: EncodedTensor) -> pb.TensorHeader:
    header = pb.TensorHeader(
        name=name,
        dtype=encoded.dtype,
        shape=list(encoded.shape),
        encoding=encoded.encoding,
        nbytes=encoded.nbytes,
        raw_nbytes=encoded.raw_nbytes,
    )
    for key, value in encoded.params.items():
        if isinstance(value, str):
            header.params[key].text = value
        elif isinstance(value, int):  # bool is an int: sent as 0/1
            header.params[key].integer = int(value)
        else:
            header.params[key].real = float(value)
    return header


def raw_entries(tensors: Mapping[str, np.ndarray]) -> tuple[list[pb.TensorHeader], list[memoryview]]:
    """Headers and payload views of `tensors` sent without encoding (the global model)."""
    headers: list[pb.TensorHeader] = []
    payloads: list[memoryview] = []
    for name, array in tensors.items():
        payload = array_bytes(np.asarray(array))
        headers.append(
            pb.TensorHeader(
                name=name,
                dtype=dtype_name(array.dtype),
                shape=[int(dim) for dim in array.shape],
                encoding=RAW,
                nbytes=payload.nbytes,
                raw_nbytes=payload.nbytes,
            )
        )
        payloads.append(payload)
    return headers, payloads


# -- validating headers (receiver) ---------------------------------------------------------------------


def tensor_infos(
    headers: Iterable[pb.TensorHeader], limits: Limits, max_total: int | None
) -> list[TensorInfo]:
    """Validated tensor announcements; StreamError names the first problem."""
    infos: list[TensorInfo] = []
    seen: set[str] = set()
    total = 0
    for header in headers:
        if len(infos) >= limits.max_tensors:
            raise StreamError(f"more than {limits.max_tensors} tensors announced")
        info = _tensor_info(header, limits)
        if info.name in seen:
            raise StreamError(f"tensor {info.name!r} announced twice")
        seen.add(info.name)
        total += info.nbytes
        if max_total is not None and total > max_total:
            raise StreamError(f"announced tensors exceed the limit of {max_total} bytes")
        infos.append(info)
    return infos


def _tensor_info(header: pb.TensorHeader, limits: Limits) -> TensorInfo:
    name = header.name
    if not name or len(name) > limits.max_name_chars:
        raise StreamError(f"tensor name must have 1..{limits.max_name_chars} characters, got {len(name)}")
    where = f"tensor {name!r}"
    try:
        itemsize = dtype_from_name(header.dtype).itemsize
    except ValueError as exc:
        raise StreamError(f"{where}: {exc}") from None
    if len(header.shape) > limits.max_rank:
        raise StreamError(f"{where}: rank {len(header.shape)} exceeds {limits.max_rank}")
    if any(dim < 0 for dim in header.shape):
        raise StreamError(f"{where}: negative dimension in shape {list(header.shape)}")
    shape = tuple(int(dim) for dim in header.shape)
    raw_nbytes = math.prod(shape) * itemsize
    if header.raw_nbytes != raw_nbytes:
        raise StreamError(
            f"{where}: raw_nbytes {header.raw_nbytes} != {raw_nbytes} for {header.dtype} {shape}"
        )
    if header.encoding not in KNOWN_ENCODINGS:
        raise StreamError(
            f"{where}: unknown encoding {header.encoding!r}; known: {', '.join(sorted(KNOWN_ENCODINGS))}"
        )
    if header.encoding == RAW and header.nbytes != raw_nbytes:
        raise StreamError(f"{where}: raw payload of {header.nbytes} bytes, expected {raw_nbytes}")
    if not 0 <= header.nbytes <= raw_nbytes:
        raise StreamError(f"{where}: {header.encoding} payload of {header.nbytes} bytes exceeds its raw size")
    return TensorInfo(
        name=name,
        dtype=header.dtype,
        shape=shape,
        encoding=header.encoding,
        params=_params(header, where, limits),
        nbytes=header.nbytes,
        raw_nbytes=raw_nbytes,
    )


def _params(header: pb.TensorHeader, where: str, limits: Limits) -> dict[str, ParamValue]:
    if len(header.params) > limits.max_params:
        raise StreamError(f"{where}: more than {limits.max_params} encoding params")
    params: dict[str, ParamValue] = {}
    for key, value in header.params.items():
        kind = value.WhichOneof("value")
        if len(key) > limits.max_param_chars or kind is None:
            raise StreamError(f"{where}: malformed encoding param {key[:40]!r}")
        if kind == "text":
            if len(value.text) > limits.max_param_chars:
                raise StreamError(f"{where}: encoding param {key!r} too long")
            params[key] = value.text
        elif kind == "integer":
            params[key] = value.integer
        else:
            params[key] = value.real
    return params


def check_against_model(infos: Iterable[TensorInfo], model: Mapping[str, np.ndarray]) -> None:
    """Every announced tensor is one of `model`'s, with its dtype and shape."""
    for info in infos:
        check_tensor_matches(info.name, info.dtype, info.shape, model)


# -- rebuilding tensors (receiver) ---------------------------------------------------------------------


class Assembler:
    """Fills one buffer per tensor from consecutive chunks and hands each finished tensor to `on_tensor`.

    With `reuse_buffer`, one scratch buffer (as large as the largest tensor) serves every tensor, so the
    arrays given to `on_tensor` are only valid during the call (ResultSink.add folds them at once).
    `destination(name)` may instead supply the array a raw tensor is received into (C-contiguous,
    writable, of the announced size); that very array is then given to `on_tensor`.
    """

    def __init__(
        self,
        infos: list[TensorInfo],
        on_tensor: Callable[[str, np.ndarray], None],
        *,
        reuse_buffer: bool = False,
        destination: Callable[[str], np.ndarray | None] | None = None,
    ) -> None:
        self.infos = infos
        self.total = sum(info.nbytes for info in infos)
        self.received = 0
        self._on_tensor = on_tensor
        self._reuse = reuse_buffer
        self._scratch: np.ndarray | None = None
        self._index = 0
        self._filled = 0
        self._buffer: np.ndarray | None = None  # uint8, the tensor being filled
        self._destination = destination
        self._target: np.ndarray | None = None  # the supplied array behind `_buffer`, if any

    def feed(self, frame: ChunkFrame) -> None:
        data = frame.data
        if frame.offset != self.received:
            raise StreamError(f"chunk at offset {frame.offset}, expected {self.received}")
        if data.nbytes == 0:
            raise StreamError(f"empty chunk at offset {frame.offset}")
        if self.received + data.nbytes > self.total:
            raise StreamError(
                f"chunk overflows the announced tensors: {self.received + data.nbytes} bytes received,"
                f" {self.total} announced"
            )
        self._complete_empty()
        # a NumPy copy releases the GIL (a memoryview copy does not): other streams go on meanwhile
        source = np.frombuffer(data, dtype=np.uint8)
        pos = 0
        while pos < data.nbytes:
            info = self.infos[self._index]
            buffer = self._buffer if self._buffer is not None else self._allocate(info)
            take = min(info.nbytes - self._filled, data.nbytes - pos)
            np.copyto(buffer[self._filled : self._filled + take], source[pos : pos + take])
            self._filled += take
            pos += take
            if self._filled == info.nbytes:
                self._complete(info, buffer)
                self._complete_empty()
        self.received += data.nbytes

    def finish(self) -> None:
        """The stream ended: every announced byte must have arrived."""
        self._complete_empty()
        if self.received != self.total or self._index != len(self.infos):
            pending = self.infos[self._index].name if self._index < len(self.infos) else "?"
            raise StreamError(
                f"stream ended after {self.received} of {self.total} announced bytes"
                f" (tensor {pending!r} incomplete)"
            )

    def _allocate(self, info: TensorInfo) -> np.ndarray:
        if self._destination is not None and info.encoding == RAW:
            target = self._destination(info.name)
            if (
                target is not None
                and target.dtype == dtype_from_name(info.dtype)  # the wire's byte order, too
                and target.nbytes == info.nbytes
                and target.flags.c_contiguous
                and target.flags.writeable
            ):
                self._target = target
                self._buffer = target.reshape(-1).view(np.uint8)
                return self._buffer
        try:
            if not self._reuse:
                self._buffer = np.empty(info.nbytes, dtype=np.uint8)
            else:
                if self._scratch is None or self._scratch.nbytes < info.nbytes:
                    self._scratch = None  # let the old one go before allocating the bigger one
                    self._scratch = np.empty(info.nbytes, dtype=np.uint8)
                self._buffer = self._scratch[: info.nbytes]
        except MemoryError:
            raise StreamError(f"tensor {info.name!r}: cannot allocate {info.nbytes} bytes") from None
        return self._buffer

    def _complete_empty(self) -> None:
        while self._index < len(self.infos) and self.infos[self._index].nbytes == 0:
            info = self.infos[self._index]
            self._complete(info, np.empty(0, dtype=np.uint8))

    def _complete(self, info: TensorInfo, buffer: np.ndarray) -> None:
        array = self._target if self._target is not None else _decode(info, buffer.data)
        self._index += 1
        self._filled = 0
        self._buffer = self._target = None
        self._on_tensor(info.name, array)


def _decode(info: TensorInfo, buffer: memoryview) -> np.ndarray:
    try:
        if info.encoding == RAW:
            return array_from_buffer(buffer, info.dtype, info.shape)
        encoded = EncodedTensor(
            encoding=info.encoding,
            payload=buffer,
            params=dict(info.params),
            dtype=info.dtype,
            shape=info.shape,
            raw_nbytes=info.raw_nbytes,
        )
        return decode_tensor(encoded, max_nbytes=info.raw_nbytes)
    except ValueError as exc:
        raise StreamError(f"tensor {info.name!r}: {exc}") from None
