"""`.pbuf` model snapshots: a serialized `ModelProto` (see proto/openfl_cli/proto/model.proto).

Written one tensor at a time and read one tensor at a time, with each tensor's bytes going from the
array to the file and from the file to a fresh array without protobuf in between: no 2 GiB message
limit and no intermediate copies. Writes are atomic, and go past the page cache (`utils.direct_io`).
Snapshots written by OpenFL (float32 bytes, shape in the first transformer metadata) load too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from google.protobuf.message import DecodeError

from openfl_cli.errors import UsageError
from openfl_cli.proto.model_pb2 import ModelProto, NamedTensorProto
from openfl_cli.tensors.codec import array_bytes, array_from_buffer, as_array, dtype_name
from openfl_cli.tensors.wire import (
    LENGTH_DELIMITED,
    VARINT,
    FieldReader,
    WireError,
    encode_tag,
    encode_varint,
)
from openfl_cli.utils.fs import ByteSink, atomic_direct_writer

_INT32_MAX = 2**31 - 1
_TENSORS_TAG = encode_tag(ModelProto.TENSORS_FIELD_NUMBER, LENGTH_DELIMITED)
_COUNT_FIELD = ModelProto.TENSOR_COUNT_FIELD_NUMBER
_DATA_FIELD = NamedTensorProto.DATA_BYTES_FIELD_NUMBER
_DATA_TAG = encode_tag(_DATA_FIELD, LENGTH_DELIMITED)


@dataclass
class Snapshot:
    tensors: dict[str, np.ndarray]
    round_number: int = 0
    tags: dict[str, tuple[str, ...]] = field(default_factory=dict)


def save_snapshot(
    path: str | Path,
    tensors: Mapping[str, np.ndarray],
    round_number: int = 0,
    tags: Sequence[str] = ("model",),
) -> None:
    """Write `tensors` to `path` atomically: a crash leaves the old file or the new one, never a mix."""
    if isinstance(round_number, bool) or not isinstance(round_number, (int, np.integer)):
        raise TypeError(f"round_number must be an int, got {type(round_number).__name__}")
    round_number = int(round_number)
    if not 0 <= round_number <= _INT32_MAX:
        raise ValueError(f"round_number must be in 0..{_INT32_MAX}, got {round_number}")
    if isinstance(tags, str) or not all(isinstance(tag, str) for tag in tags):
        raise TypeError(f"tags must be a sequence of strings, got {tags!r}")
    with atomic_direct_writer(path) as handle:
        count = 0
        for name, array in tensors.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"tensor names must be non-empty strings, got {name!r}")
            _write_tensor(handle, name, array, round_number, tuple(tags))
            count += 1
        # The last field, as protobuf would order it: proves the file was not cut short.
        handle.write(ModelProto(tensor_count=count).SerializeToString())


def load_snapshot(path: str | Path) -> Snapshot:
    """Read a snapshot written by fx or by OpenFL; a damaged file raises UsageError naming it."""
    snapshot = Snapshot(tensors={})
    first = True
    for proto, array in _iter_records(Path(path)):
        name = proto.name
        if not name:
            raise UsageError(f"{path}: corrupt model snapshot: a tensor has no name")
        if name in snapshot.tensors:
            raise UsageError(f"{path}: corrupt model snapshot: tensor {name!r} appears twice")
        if first:
            snapshot.round_number, first = proto.round_number, False
        elif proto.round_number != snapshot.round_number:
            raise UsageError(
                f"{path}: corrupt model snapshot: tensor {name!r} is from round {proto.round_number}, "
                f"the others from round {snapshot.round_number}"
            )
        snapshot.tensors[name] = array
        snapshot.tags[name] = tuple(proto.tags)
    return snapshot


def _write_tensor(
    handle: ByteSink, name: str, array: np.ndarray, round_number: int, tags: tuple[str, ...]
) -> None:
    array = as_array(array)
    data = array_bytes(array)
    dtype = dtype_name(array.dtype)
    shape = tuple(int(dim) for dim in array.shape)
    # Fields 1-6, then 7 written straight from the array, then 8-9: the same bytes protobuf would
    # produce for the whole message (fields in number order, empty data_bytes omitted).
    head = NamedTensorProto(name=name, round_number=round_number, lossless=True, tags=tags)
    if dtype == "float32" and all(dim <= _INT32_MAX for dim in shape):
        head.transformer_metadata.add().int_list.extend(shape)  # what OpenFL needs to read it
    head_bytes = head.SerializeToString()
    tail_bytes = NamedTensorProto(dtype=dtype, shape=shape).SerializeToString()
    data_prefix = _DATA_TAG + encode_varint(data.nbytes) if data.nbytes else b""
    length = len(head_bytes) + len(data_prefix) + data.nbytes + len(tail_bytes)
    handle.write(_TENSORS_TAG + encode_varint(length) + head_bytes + data_prefix)
    if data.nbytes:
        handle.write(data)
    handle.write(tail_bytes)


def _iter_records(path: Path) -> Iterator[tuple[NamedTensorProto, np.ndarray]]:
    """Each tensor of the file at `path` in order; any damage becomes a UsageError naming the file."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 (closed by the with below, errors mapped first)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read model snapshot: {exc.strerror or exc}") from None
    with handle:
        size = os.fstat(handle.fileno()).st_size
        if size == 0:
            raise UsageError(f"{path}: not a model snapshot: the file is empty")
        try:
            yield from _scan(FieldReader(handle, size))
        except WireError as exc:
            raise UsageError(f"{path}: corrupt model snapshot: {exc}") from None
        except OSError as exc:
            raise UsageError(f"{path}: cannot read model snapshot: {exc.strerror or exc}") from None


def _scan(reader: FieldReader) -> Iterator[tuple[NamedTensorProto, np.ndarray]]:
    """The top level of a ModelProto, one field at a time; checks fx's tensor count trailer."""
    count: int | None = None
    seen = fx_layout = 0
    while (key := reader.read_tag()) is not None:
        field_number, wire_type, _ = key
        if field_number == _COUNT_FIELD and wire_type == VARINT:
            count = reader.read_varint()[0]
        elif field_number == ModelProto.TENSORS_FIELD_NUMBER and wire_type == LENGTH_DELIMITED:
            if count is not None:
                raise WireError("a tensor follows the end-of-snapshot marker")
            proto, data = _read_tensor(reader.child(reader.read_length()))
            seen += 1
            fx_layout += bool(proto.dtype)
            try:
                array = _to_array(proto, data)
            except ValueError as exc:
                raise WireError(f"tensor {proto.name!r}: {exc}") from None
            yield proto, array
        else:
            reader.read_raw_value(wire_type)  # a field from a newer writer: skip it
    if count is None and fx_layout:
        raise WireError("the end-of-snapshot marker is missing (truncated)")
    if count is not None and count != seen:
        raise WireError(f"the file holds {seen} tensors but was written with {count} (truncated)")


def _read_tensor(reader: FieldReader) -> tuple[NamedTensorProto, np.ndarray]:
    """One NamedTensorProto: small fields parsed by protobuf, data_bytes read into its own buffer."""
    header = bytearray()
    data = np.empty(0, dtype=np.uint8)
    while (key := reader.read_tag()) is not None:
        field_number, wire_type, raw_tag = key
        if field_number == _DATA_FIELD and wire_type == LENGTH_DELIMITED:
            # A fresh numpy buffer is aligned for any dtype and writable, unlike a slice of the file.
            data = np.empty(reader.read_length(), dtype=np.uint8)
            reader.read_into(data.data)
        else:
            header.extend(raw_tag)
            header.extend(reader.read_raw_value(wire_type))
    try:
        proto = NamedTensorProto.FromString(bytes(header))
    except DecodeError as exc:
        raise WireError(f"malformed tensor record ({exc})") from None
    return proto, data


def _to_array(proto: NamedTensorProto, data: np.ndarray) -> np.ndarray:
    if proto.dtype:
        return array_from_buffer(data, proto.dtype, tuple(proto.shape))
    # OpenFL layout: NoCompressionPipeline stores float32 bytes and the shape as the int_list of
    # its single transformer's metadata. Other OpenFL pipelines cannot be undone without their code.
    metadata = proto.transformer_metadata
    if len(metadata) != 1 or metadata[0].int_to_float or metadata[0].bool_list:
        raise ValueError(
            "no dtype/shape and no NoCompressionPipeline metadata (written by an OpenFL compression "
            "pipeline that fx cannot decode?)"
        )
    return array_from_buffer(data, "float32", tuple(metadata[0].int_list))
