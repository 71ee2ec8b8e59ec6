"""The local channel: headers and arrays round-trip; malformed, oversized or truncated input is refused
with a clear error; nothing is pickled."""

from __future__ import annotations

import json
import pickle
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from openfl_cli.client import channel
from openfl_cli.client.channel import (
    MAGIC,
    ChannelClosed,
    ChannelError,
    Message,
    SocketEndpoint,
    decode_header,
    queue_pair,
)

ARRAYS = {
    "f32": np.arange(6, dtype=np.float32).reshape(2, 3),
    "i64": np.array([-1, 2**40], dtype=np.int64),
    "scalar": np.array(3.5, dtype=np.float64),  # 0-d
    "empty": np.zeros((0, 4), dtype=np.float32),
    "mask": np.array([True, False]),
    "half": np.array([1.5], dtype=np.float16),
    "cplx": np.array([1 + 2j], dtype=np.complex64),
    "strided": np.arange(12, dtype=np.int32).reshape(3, 4)[:, ::2],
    "big_endian": np.array([1.0, 2.0], dtype=">f8"),
}


def a_message() -> Message:
    return Message(
        kind="result",
        seq=7,
        task="train",
        round=2,
        total_rounds=5,
        params=dict(ARRAYS),
        params_type="DIFF",
        metrics={"accuracy": 0.75},
        meta={"NUM_STEPS_CURRENT_ROUND": 10, "nested": {"a": [1, 2, None]}, "text": "é"},
    )


@pytest.fixture
def sockets() -> Iterator[tuple[SocketEndpoint, socket.socket]]:
    ours, theirs = channel.socket_pair(stall_timeout=5.0)
    yield ours, theirs
    ours.close()
    theirs.close()


def check_same(received: Message, sent: Message) -> None:
    assert (received.kind, received.seq, received.task, received.round, received.total_rounds) == (
        sent.kind,
        sent.seq,
        sent.task,
        sent.round,
        sent.total_rounds,
    )
    assert received.params_type == sent.params_type
    assert received.metrics == sent.metrics and received.meta == sent.meta
    assert received.params is not None and sent.params is not None
    assert list(received.params) == list(sent.params)
    for name, array in sent.params.items():
        got = received.params[name]
        assert got.shape == array.shape and got.dtype.name == array.dtype.name, name
        np.testing.assert_array_equal(got, array)


def test_socket_round_trip(sockets: tuple[SocketEndpoint, socket.socket]) -> None:
    ours, theirs = sockets
    peer = SocketEndpoint(theirs)
    sent = a_message()
    peer.send(sent)
    peer.send(Message(kind="end"))
    check_same(ours.receive(1.0), sent)  # type: ignore[arg-type]
    end = ours.receive(1.0)
    assert end is not None and end.kind == "end" and end.params is None
    assert ours.receive(0.05) is None  # nothing more: a timeout, not an error
    peer.close()
    with pytest.raises(ChannelClosed):
        ours.receive(1.0)


def test_a_large_model_streams_across(sockets: tuple[SocketEndpoint, socket.socket]) -> None:
    ours, theirs = sockets
    big = {"w": np.random.default_rng(0).standard_normal((512, 1024)).astype(np.float32)}
    sender = threading.Thread(target=SocketEndpoint(theirs).send, args=(Message(kind="task", params=big),))
    sender.start()
    got = ours.receive(5.0)
    sender.join()
    assert got is not None and got.params is not None
    np.testing.assert_array_equal(got.params["w"], big["w"])
    assert got.params["w"].flags.writeable  # the script may train on it in place


def test_queue_round_trip_copies_like_the_socket() -> None:
    runner, script = queue_pair()
    sent = a_message()
    script.send(sent)
    received = runner.receive(1.0)
    assert received is not None
    check_same(received, sent)
    assert received.params is not None
    assert not np.shares_memory(received.params["f32"], ARRAYS["f32"])
    assert received.meta is not sent.meta
    assert runner.receive(0.0) is None
    script.close()
    with pytest.raises(ChannelClosed):
        runner.receive(1.0)
    with pytest.raises(ChannelClosed):
        runner.send(Message(kind="end"))


def test_both_kinds_refuse_what_cannot_travel() -> None:
    _runner, script = queue_pair()
    ours, theirs = channel.socket_pair()
    try:
        for endpoint in (script, SocketEndpoint(theirs)):
            with pytest.raises(ChannelError, match="tensor 'o'"):
                endpoint.send(Message(kind="result", params={"o": np.array([object()])}))
            with pytest.raises(ChannelError, match="plain JSON"):
                endpoint.send(Message(kind="result", meta={"model": object()}))
            with pytest.raises(ChannelError, match="finite"):
                endpoint.send(Message(kind="result", metrics={"loss": float("nan")}))
    finally:
        ours.close()


def test_nothing_is_pickled(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("pickle used")

    for name in ("dumps", "loads", "dump", "load"):
        monkeypatch.setattr(pickle, name, refuse)
    monkeypatch.setattr(pickle, "Pickler", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    ours, theirs = channel.socket_pair()
    try:
        SocketEndpoint(theirs).send(a_message())
        check_same(ours.receive(1.0), a_message())  # type: ignore[arg-type]
    finally:
        ours.close()
    runner, script = queue_pair()
    script.send(a_message())
    check_same(runner.receive(1.0), a_message())  # type: ignore[arg-type]
    source = Path(channel.__file__).read_text()
    assert "import pickle" not in source and "marshal" not in source


# --- malformed input -------------------------------------------------------------------------------


def header(**changes: object) -> bytes:
    base: dict[str, object] = {
        "kind": "result",
        "seq": 1,
        "tensors": [{"name": "w", "dtype": "float32", "shape": [2], "nbytes": 8}],
    }
    base.update(changes)
    return json.dumps(base).encode()


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"kind": "result", "x": 1}', "unknown fields"),
        (header(kind="pickle"), "kind"),
        (header(task="hack"), "task"),
        (header(seq=-1), "seq"),
        (header(seq=True), "seq"),
        (header(round="2"), "round"),
        (header(params_type="HALF"), "params_type"),
        (header(metrics={"acc": "x"}), "finite"),
        (b'{"kind": "result", "metrics": {"acc": NaN}}', "not valid JSON"),
        (header(meta=[1]), "meta"),
        (header(tensors={"w": 1}), "list or null"),
        (
            header(tensors=[{"name": "w", "dtype": "object", "shape": [2], "nbytes": 16}]),
            "unknown tensor dtype",
        ),
        (header(tensors=[{"name": "w", "dtype": "float32", "shape": [2], "nbytes": 9}]), "nbytes"),
        (header(tensors=[{"name": "w", "dtype": "float32", "shape": [-2], "nbytes": -8}]), "non-negative"),
        (header(tensors=[{"name": "w", "dtype": "float32", "shape": [1.5], "nbytes": 4}]), "non-negative"),
        (header(tensors=[{"name": "w", "dtype": "float32", "shape": [1] * 65, "nbytes": 4}]), "at most 64"),
        (header(tensors=[{"name": 3, "dtype": "float32", "shape": [1], "nbytes": 4}]), "name must be"),
        (header(tensors=[{"name": "", "dtype": "float32", "shape": [1], "nbytes": 4}]), "name must be"),
        (header(tensors=[{"name": "w", "dtype": "float32", "shape": [1]}]), "exactly the fields"),
        (
            header(tensors=[{"name": "w", "dtype": "int8", "shape": [1], "nbytes": 1}] * 2),
            "appears twice",
        ),
        (header(tensors=[{"name": "w", "dtype": "float64", "shape": [1 << 40], "nbytes": 8 << 40}]), "limit"),
    ],
)
def test_malformed_headers_are_refused(data: bytes, match: str) -> None:
    with pytest.raises(ChannelError, match=match):
        decode_header(data)


def test_deeply_nested_meta_is_refused() -> None:
    with pytest.raises(ChannelError, match="not valid JSON"):
        decode_header(b'{"kind": "end", "meta": {"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}")


def raw_prefix(length: int, magic: bytes = MAGIC) -> bytes:
    return struct.pack(">4sI", magic, length)


def test_oversized_header_is_refused_before_it_is_read(sockets: tuple[SocketEndpoint, socket.socket]) -> None:
    ours, theirs = sockets
    theirs.sendall(raw_prefix(channel.MAX_HEADER_BYTES + 1))
    with pytest.raises(ChannelError, match="over the"):
        ours.receive(1.0)


def test_wrong_magic_is_refused(sockets: tuple[SocketEndpoint, socket.socket]) -> None:
    ours, theirs = sockets
    theirs.sendall(raw_prefix(2, b"\x80\x04\x95\x00"))  # what a pickle stream starts with
    with pytest.raises(ChannelError, match="not a channel message"):
        ours.receive(1.0)


def test_payload_limit_applies_per_endpoint() -> None:
    ours, theirs = channel.socket_pair(max_payload=16)
    try:
        data = header(tensors=[{"name": "w", "dtype": "float32", "shape": [5], "nbytes": 20}])
        theirs.sendall(raw_prefix(len(data)) + data)
        with pytest.raises(ChannelError, match="16 byte limit"):
            ours.receive(1.0)
    finally:
        ours.close()
        theirs.close()


@pytest.mark.parametrize("cut", ["prefix", "header", "tensor"])
def test_truncated_input_is_refused(sockets: tuple[SocketEndpoint, socket.socket], cut: str) -> None:
    ours, theirs = sockets
    data = header()
    whole = raw_prefix(len(data)) + data + b"\x00" * 8
    end = {"prefix": 3, "header": 8 + len(data) // 2, "tensor": len(whole) - 3}[cut]
    theirs.sendall(whole[:end])
    theirs.shutdown(socket.SHUT_WR)
    with pytest.raises(ChannelError, match="truncated") as raised:
        ours.receive(1.0)
    assert not isinstance(raised.value, ChannelClosed)


def test_a_stalled_message_fails_instead_of_hanging() -> None:
    ours, theirs = channel.socket_pair(stall_timeout=0.2)
    try:
        theirs.sendall(raw_prefix(100))
        with pytest.raises(ChannelError, match="stopped in the middle"):
            ours.receive(1.0)
    finally:
        ours.close()
        theirs.close()


def test_connect_fd_checks_its_argument() -> None:
    with pytest.raises(ChannelError, match="must be a number"):
        channel.connect_fd("three")
    with pytest.raises(ChannelError, match="not the channel's socket"):
        channel.connect_fd(2**20)
