"""The local channel between a task runner and the training script it drives.

Two kinds behind one small interface (`Endpoint`): a pair of queues when the script runs in a thread
of this process, and one end of a `socket.socketpair()` when it runs as a child process (no port, no
network: the child inherits its end as a file descriptor). Both carry the same `Message`s with the
same checks, so a script behaves the same either way; the queue pair even copies arrays and
round-trips the header through JSON, giving it the value semantics of the socket.

On the socket a message is a fixed prefix (magic, header length), a JSON header (kind, sequence
number, task, round, metrics, meta, params type, and each tensor's name/dtype/shape/nbytes), then the
tensors' raw bytes in that order. Never pickle: the header is data, dtypes come from the codec's closed
list, every size is checked against the header before anything is allocated.
"""

from __future__ import annotations

import json
import math
import queue
import selectors
import socket
import struct
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from numbers import Real
from typing import Any

import numpy as np

from openfl_cli.tensors.codec import array_bytes, array_from_buffer, as_array, dtype_name, expected_nbytes

KINDS = ("task", "result", "log", "end")  # task/end: runner -> script; result/log: script -> runner
TASKS = ("train", "evaluate")
PARAMS_TYPES = ("FULL", "DIFF")

MAGIC = b"FXC1"
_PREFIX = struct.Struct(">4sI")  # magic, header length
MAX_HEADER_BYTES = 16 << 20
MAX_TENSORS = 1_000_000
MAX_NAME_CHARS = 4096
MAX_NDIM = 64
MAX_PAYLOAD_BYTES = 256 << 30  # one message's tensor bytes: far above any model a site trains
_FIELDS = frozenset(
    ("kind", "seq", "task", "round", "total_rounds", "params_type", "metrics", "meta", "tensors")
)
_TENSOR_FIELDS = frozenset(("name", "dtype", "shape", "nbytes"))


class ChannelError(Exception):
    """A message that is malformed, too large, or cannot be sent; the text says what is wrong."""


class ChannelClosed(ChannelError):
    """The other side has closed the channel (ended, or died)."""


@dataclass
class Message:
    """One exchange. `seq` pairs a result with its task; `params` is None when no model travels."""

    kind: str
    seq: int = 0
    task: str | None = None
    round: int | None = None
    total_rounds: int | None = None
    params: dict[str, np.ndarray] | None = None
    params_type: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int


class Endpoint(ABC):
    """One side of a channel. `receive` returns None when `timeout` passes with nothing to read and
    raises `ChannelClosed` once the other side is gone; `send` raises `ChannelClosed` likewise."""

    @abstractmethod
    def send(self, message: Message) -> None: ...

    @abstractmethod
    def receive(self, timeout: float | None = None) -> Message | None: ...

    @abstractmethod
    def close(self) -> None: ...


# --- the header: built and checked in one place for both kinds ------------------------------------


def header_of(message: Message) -> tuple[dict[str, Any], list[np.ndarray]]:
    """The JSON-ready header of `message` and its arrays in header order (refuses unsupported dtypes)."""
    arrays: list[np.ndarray] = []
    entries: list[dict[str, Any]] | None = None
    if message.params is not None:
        entries = []
        for name, value in message.params.items():
            if not isinstance(name, str):
                raise ChannelError(f"tensor names must be strings, got {name!r}")
            try:
                array = as_array(value)
                dtype = dtype_name(array.dtype)
            except (TypeError, ValueError) as exc:
                raise ChannelError(f"tensor {name!r}: {exc}") from None
            entries.append({"name": name, "dtype": dtype, "shape": list(array.shape), "nbytes": array.nbytes})
            arrays.append(array)
    bad_keys = [key for key in message.meta if not isinstance(key, str)]
    if bad_keys:
        raise ChannelError(f"meta keys must be strings, got {bad_keys[:3]!r}")
    header = {
        "kind": message.kind,
        "seq": message.seq,
        "task": message.task,
        "round": message.round,
        "total_rounds": message.total_rounds,
        "params_type": message.params_type,
        "metrics": {str(name): _finite(name, value) for name, value in message.metrics.items()},
        "meta": message.meta,
        "tensors": entries,
    }
    return header, arrays


def _finite(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise ChannelError(f"metric {name!r} must be a finite number, got {value!r}")
    return float(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):  # a NumPy scalar in meta (a step count, a loss)
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON data")


def encode_header(header: Mapping[str, Any]) -> bytes:
    """JSON text of `header` (no NaN/Infinity; meta must be plain JSON data)."""
    try:
        text = json.dumps(
            header, allow_nan=False, separators=(",", ":"), ensure_ascii=False, default=_json_default
        )
    except (TypeError, ValueError) as exc:
        raise ChannelError(
            f"message cannot travel: metrics and meta must be plain JSON data ({exc})"
        ) from None
    data = text.encode("utf-8")
    if len(data) > MAX_HEADER_BYTES:
        raise ChannelError(f"message header of {len(data)} bytes is over the {MAX_HEADER_BYTES} byte limit")
    return data


def decode_header(
    data: bytes | bytearray, max_payload: int = MAX_PAYLOAD_BYTES
) -> tuple[Message, list[TensorInfo] | None]:
    """A message (without its arrays) and its tensors' layout from header bytes; ChannelError if bad."""
    if len(data) > MAX_HEADER_BYTES:
        raise ChannelError(f"message header of {len(data)} bytes is over the {MAX_HEADER_BYTES} byte limit")
    try:
        header = json.loads(bytes(data).decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ChannelError(f"message header is not valid JSON: {exc}") from None
    if not isinstance(header, dict):
        raise ChannelError("message header must be a JSON object")
    unknown = sorted(set(header) - _FIELDS)
    if unknown:
        raise ChannelError(f"message header has unknown fields {unknown}")
    kind = header.get("kind")
    if kind not in KINDS:
        raise ChannelError(f"message kind must be one of {KINDS}, got {kind!r}")
    task = header.get("task")
    if task is not None and task not in TASKS:
        raise ChannelError(f"message task must be one of {TASKS} or null, got {task!r}")
    params_type = header.get("params_type")
    if params_type is not None and params_type not in PARAMS_TYPES:
        raise ChannelError(f"params_type must be one of {PARAMS_TYPES} or null, got {params_type!r}")
    meta = header.get("meta") or {}
    if not isinstance(meta, dict):
        raise ChannelError("message meta must be a JSON object")
    tensors = _tensor_infos(header.get("tensors"), max_payload)
    message = Message(
        kind=kind,
        seq=_count("seq", header.get("seq", 0)),
        task=task,
        round=_optional_count("round", header.get("round")),
        total_rounds=_optional_count("total_rounds", header.get("total_rounds")),
        params_type=params_type,
        metrics=_checked_metrics(header.get("metrics") or {}),
        meta=meta,
    )
    return message, tensors


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ChannelError(f"message {name} must be a non-negative integer, got {value!r}")
    return value


def _optional_count(name: str, value: Any) -> int | None:
    return None if value is None else _count(name, value)


def _checked_metrics(metrics: Any) -> dict[str, float]:
    if not isinstance(metrics, dict):
        raise ChannelError("message metrics must be a JSON object")
    checked: dict[str, float] = {}
    for name, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ChannelError(f"metric {name!r} must be a finite number, got {value!r}")
        checked[name] = float(value)
    return checked


def _tensor_infos(entries: Any, max_payload: int) -> list[TensorInfo] | None:
    if entries is None:
        return None
    if not isinstance(entries, list):
        raise ChannelError("message tensors must be a list or null")
    if len(entries) > MAX_TENSORS:
        raise ChannelError(f"message lists {len(entries)} tensors, over the limit of {MAX_TENSORS}")
    infos: list[TensorInfo] = []
    seen: set[str] = set()
    total = 0
    for index, entry in enumerate(entries):
        info = _tensor_info(index, entry)
        if info.name in seen:
            raise ChannelError(f"tensor {info.name!r} appears twice in the message")
        seen.add(info.name)
        total += info.nbytes
        if total > max_payload:
            raise ChannelError(f"message tensors exceed the {max_payload} byte limit")
        infos.append(info)
    return infos


def _tensor_info(index: int, entry: Any) -> TensorInfo:
    if not isinstance(entry, dict) or set(entry) != _TENSOR_FIELDS:
        raise ChannelError(f"tensor entry {index} must have exactly the fields {sorted(_TENSOR_FIELDS)}")
    name, dtype, shape, nbytes = entry["name"], entry["dtype"], entry["shape"], entry["nbytes"]
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_CHARS:
        raise ChannelError(f"tensor entry {index}: name must be a string of 1 to {MAX_NAME_CHARS} characters")
    if not isinstance(shape, list) or len(shape) > MAX_NDIM:
        raise ChannelError(f"tensor {name!r}: shape must be a list of at most {MAX_NDIM} integers")
    if not isinstance(dtype, str):
        raise ChannelError(f"tensor {name!r}: dtype must be a string")
    try:
        expected = expected_nbytes(dtype, shape)
    except ValueError as exc:
        raise ChannelError(f"tensor {name!r}: {exc}") from None
    if isinstance(nbytes, bool) or nbytes != expected:
        raise ChannelError(
            f"tensor {name!r}: nbytes {nbytes!r} does not match dtype {dtype} and shape {shape}"
        )
    return TensorInfo(name, dtype, tuple(shape), expected)


# --- in-process: a pair of queues -----------------------------------------------------------------

_CLOSED = object()


class QueueEndpoint(Endpoint):
    """One side of a queue pair; what it sends is checked and copied as the socket would."""

    def __init__(self, inbox: queue.Queue[Any], outbox: queue.Queue[Any]) -> None:
        self._inbox = inbox
        self._outbox = outbox
        self._closed = False
        self._peer_closed = False
        self.peer: QueueEndpoint | None = None

    def send(self, message: Message) -> None:
        if self._closed or (self.peer is not None and self.peer._closed):
            raise ChannelClosed("the other side closed the channel")
        header, arrays = header_of(message)
        copied, _ = decode_header(encode_header(header))
        if message.params is not None:
            names = message.params.keys()
            copied.params = {
                name: np.array(array, copy=True) for name, array in zip(names, arrays, strict=True)
            }
        self._outbox.put(copied)

    def receive(self, timeout: float | None = None) -> Message | None:
        if self._peer_closed:
            raise ChannelClosed("the other side closed the channel")
        try:
            item = self._inbox.get(timeout=None if timeout is None else max(0.0, timeout))
        except queue.Empty:
            return None
        if item is _CLOSED:
            self._peer_closed = True
            raise ChannelClosed("the other side closed the channel")
        message: Message = item
        return message

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._outbox.put(_CLOSED)


def queue_pair() -> tuple[QueueEndpoint, QueueEndpoint]:
    """(runner side, script side) of a new in-process channel."""
    to_script: queue.Queue[Any] = queue.Queue()
    to_runner: queue.Queue[Any] = queue.Queue()
    runner, script = QueueEndpoint(to_runner, to_script), QueueEndpoint(to_script, to_runner)
    runner.peer, script.peer = script, runner
    return runner, script


# --- ex-process: one end of a socketpair ----------------------------------------------------------


class SocketEndpoint(Endpoint):
    """A stream socket carrying framed messages. `stall_timeout` bounds a message that has started
    but does not finish (the wait for a message to start is the caller's `timeout`)."""

    def __init__(
        self, sock: socket.socket, *, max_payload: int = MAX_PAYLOAD_BYTES, stall_timeout: float = 600.0
    ) -> None:
        self._sock = sock
        self._max_payload = max_payload
        sock.settimeout(stall_timeout)
        self._selector = selectors.DefaultSelector()
        self._selector.register(sock, selectors.EVENT_READ)
        self._send_lock = threading.Lock()
        self._receive_lock = threading.Lock()
        self._closed = False

    def send(self, message: Message) -> None:
        header, arrays = header_of(message)
        data = encode_header(header)
        with self._send_lock:
            if self._closed:
                raise ChannelClosed("the channel is closed")
            try:
                self._sock.sendall(_PREFIX.pack(MAGIC, len(data)))
                self._sock.sendall(data)
                for array in arrays:
                    if array.nbytes:
                        self._sock.sendall(array_bytes(array))
            except (BrokenPipeError, ConnectionResetError) as exc:
                raise ChannelClosed(f"the other side closed the channel ({exc})") from None
            except OSError as exc:
                raise ChannelError(f"sending a message failed: {exc}") from None

    def receive(self, timeout: float | None = None) -> Message | None:
        with self._receive_lock:
            if self._closed:
                raise ChannelClosed("the channel is closed")
            if not self._selector.select(None if timeout is None else max(0.0, timeout)):
                return None
            prefix = self._read(_PREFIX.size, "message prefix", first=True)
            magic, length = _PREFIX.unpack(prefix)
            if magic != MAGIC:
                raise ChannelError(f"not a channel message (magic {bytes(magic)!r})")
            if length > MAX_HEADER_BYTES:
                raise ChannelError(
                    f"message header of {length} bytes is over the {MAX_HEADER_BYTES} byte limit"
                )
            message, infos = decode_header(self._read(length, "message header"), self._max_payload)
            if infos is not None:
                message.params = {
                    info.name: array_from_buffer(
                        self._read(info.nbytes, f"tensor {info.name!r}"), info.dtype, info.shape
                    )
                    for info in infos
                }
            return message

    def _read(self, size: int, what: str, *, first: bool = False) -> bytearray:
        buffer = bytearray(size)
        view = memoryview(buffer)
        got = 0
        while got < size:
            try:
                count = self._sock.recv_into(view[got:])
            except TimeoutError:
                raise ChannelError(f"the other side stopped in the middle of a message ({what})") from None
            except ConnectionResetError:
                count = 0
            except OSError as exc:
                raise ChannelError(f"reading a message failed: {exc}") from None
            if count == 0:
                if first and got == 0:
                    raise ChannelClosed("the other side closed the channel")
                raise ChannelError(f"truncated message: the channel ended inside the {what}")
            got += count
        return buffer

    def close(self) -> None:
        with self._send_lock:
            if self._closed:
                return
            self._closed = True
        try:
            self._selector.close()
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already gone
        finally:
            self._sock.close()


def socket_pair(**options: Any) -> tuple[SocketEndpoint, socket.socket]:
    """(runner side endpoint, the raw socket to hand to the child process)."""
    ours, theirs = socket.socketpair()
    return SocketEndpoint(ours, **options), theirs


def connect_fd(fd: int | str, **options: Any) -> SocketEndpoint:
    """The script's side of the channel from an inherited file descriptor number."""
    if isinstance(fd, str):
        if not fd.strip().isdigit():
            raise ChannelError(f"channel file descriptor must be a number, got {fd!r}")
        fd = int(fd)
    if isinstance(fd, bool) or not isinstance(fd, int) or fd < 0:
        raise ChannelError(f"channel file descriptor must be a non-negative integer, got {fd!r}")
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise ChannelError(f"file descriptor {fd} is not the channel's socket: {exc}") from None
    return SocketEndpoint(sock, **options)
