"""The generic core serves a second service as it serves the federation: every call is guarded."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import grpc
import pytest

from openfl_cli.errors import FxError, UsageError
from openfl_cli.transport.core.channel import RemotePeer, open_channel
from openfl_cli.transport.core.guard import CallGuard
from openfl_cli.transport.core.handlers import Rpc, guarded_handler
from openfl_cli.transport.core.metadata import sender_metadata
from openfl_cli.transport.core.network import channel_options
from openfl_cli.transport.core.server import GrpcServer
from openfl_cli.transport.limits import Limits
from openfl_cli.transport.messages import AggregatorRefused, RefusalCode, Refused
from openfl_cli.transport.status import refusal_from
from tests.transport.conftest import Authorizer, Pki

SERVICE = "test.Echo"


class Echo:
    """A service that records who reached its methods."""

    def __init__(self) -> None:
        self.reached: list[str] = []

    def say(self, sender: str, request: bytes, context: grpc.ServicerContext) -> bytes:
        self.reached.append(sender)
        if request == b"boom":
            raise RuntimeError("a bug")
        return b"hello " + sender.encode()

    def count(self, sender: str, request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        self.reached.append(sender)
        if request == b"late":
            raise Refused(RefusalCode.LATE, "too late to count")  # before the first item
        for number in range(int(request)):
            yield str(number).encode()


def token_check(metadata: Mapping[str, str], sender: str) -> None:
    if metadata.get("x-token") != "sesame":
        raise Refused(RefusalCode.PLAN_MISMATCH, f"{sender} brought the wrong token")


class BrokenAuthorizer:
    def check(self, context: Any, claimed_sender: str) -> None:
        raise KeyError("the roster vanished")


@pytest.fixture
def echo() -> Echo:
    return Echo()


def serve(echo: Echo, pki: Pki, *, tls: bool = True, authorizer: Any = None) -> GrpcServer:
    guard = CallGuard(
        check_peer_name=tls, authorizer=authorizer or Authorizer({"one", "two"}), checks=(token_check,)
    )
    rpcs = {
        "Say": Rpc(echo.say, bytes, bytes),
        "Count": Rpc(echo.count, bytes, bytes, response_streaming=True),
    }
    server = GrpcServer(
        [guarded_handler(SERVICE, rpcs, guard, role="echo server")],
        "127.0.0.1",
        0,
        pki.server.material() if tls else None,
        role="echo server",
    )
    server.start()
    return server


def call(
    pki: Pki,
    server: GrpcServer,
    method: str,
    request: bytes,
    *,
    name: str = "one",
    sender: str | None = "one",
    token: str = "sesame",
    tls: bool = True,
) -> Any:
    target = f"127.0.0.1:{server.port}"
    peer = RemotePeer("echo server", target, tls)
    options = channel_options(Limits(), 0.2, "localhost" if tls else None)
    material = pki.clients[name].material() if tls else None
    metadata = (*sender_metadata(sender), ("x-token", token)) if sender else (("x-token", token),)
    with open_channel(target, material, options) as channel:
        if method == "Say":
            stub = channel.unary_unary(f"/{SERVICE}/Say")
            return peer.translated(method, lambda: stub(request, metadata=metadata, timeout=10))
        stream = channel.unary_stream(f"/{SERVICE}/Count")
        return peer.translated(method, lambda: list(stream(request, metadata=metadata, timeout=10)))


@pytest.fixture
def server(echo: Echo, pki: Pki) -> Iterator[GrpcServer]:
    server = serve(echo, pki)
    yield server
    server.stop(0.2)


def test_an_admitted_call_reaches_the_method_with_its_sender(
    pki: Pki, server: GrpcServer, echo: Echo
) -> None:
    assert call(pki, server, "Say", b"hi") == b"hello one"
    assert call(pki, server, "Count", b"3", name="two", sender="two") == [b"0", b"1", b"2"]
    assert echo.reached == ["one", "two"]


@pytest.mark.parametrize(
    ("changes", "code", "text"),
    [
        (
            {"sender": "two"},
            RefusalCode.NOT_AUTHORIZED,
            "certificate common name 'one' does not match the sender 'two'",
        ),
        ({"sender": None}, RefusalCode.NOT_AUTHORIZED, "the call does not name its sender"),
        (
            {"name": "mallory", "sender": "mallory"},
            RefusalCode.NOT_AUTHORIZED,
            "'mallory' is not in plan/cols.yaml",
        ),
        ({"token": "open"}, RefusalCode.PLAN_MISMATCH, "one brought the wrong token"),
    ],
)
@pytest.mark.parametrize("method", ["Say", "Count"])
def test_refused_calls_never_reach_the_method(
    pki: Pki,
    server: GrpcServer,
    echo: Echo,
    method: str,
    changes: dict[str, Any],
    code: RefusalCode,
    text: str,
) -> None:
    with pytest.raises(AggregatorRefused) as refused:
        call(pki, server, method, b"2", **changes)
    assert refused.value.code is code and text in refused.value.reason
    assert echo.reached == []


def test_a_failing_authorizer_refuses(pki: Pki, echo: Echo) -> None:
    server = serve(echo, pki, authorizer=BrokenAuthorizer())
    try:
        with pytest.raises(AggregatorRefused, match="not authorized: 'the roster vanished'"):
            call(pki, server, "Say", b"hi")
    finally:
        server.stop(0.2)
    assert echo.reached == []


def test_a_streaming_method_refuses_before_its_first_item(pki: Pki, server: GrpcServer) -> None:
    with pytest.raises(AggregatorRefused, match="late: too late to count") as refused:
        call(pki, server, "Count", b"late")
    assert refused.value.code is RefusalCode.LATE


def test_a_bug_is_an_internal_error_without_details(pki: Pki, server: GrpcServer) -> None:
    with pytest.raises(FxError, match=r"Say failed at the echo server .*: internal error on the echo server"):
        call(pki, server, "Say", b"boom")


def test_without_tls_the_guard_still_runs(pki: Pki, echo: Echo) -> None:
    server = serve(echo, pki, tls=False)
    try:
        assert call(pki, server, "Say", b"hi", tls=False) == b"hello one"
        with pytest.raises(AggregatorRefused, match="'mallory' is not in"):
            call(pki, server, "Say", b"hi", sender="mallory", tls=False)
    finally:
        server.stop(0.2)


def test_a_tls_server_needs_its_own_certificate(pki: Pki) -> None:
    with pytest.raises(UsageError, match="needs its own certificate"):
        GrpcServer([], "127.0.0.1", 0, pki.server.material(with_identity=False))


def test_refusal_codes_survive_the_trailer() -> None:
    class Error(grpc.RpcError):
        def trailing_metadata(self) -> tuple[tuple[str, str], ...]:
            return (("fx-refusal", "duplicate"),)

        def details(self) -> str:
            return "duplicate: already here"

    refusal = refusal_from(Error())
    assert refusal is not None and refusal.code is RefusalCode.DUPLICATE and refusal.reason == "already here"
