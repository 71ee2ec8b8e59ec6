"""Real handshakes: Python's ssl module, and gRPC with the credentials the transport uses."""

from __future__ import annotations

import datetime as dt
import ssl
from pathlib import Path

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from openfl_cli.pki import keys
from openfl_cli.pki.layout import TlsPaths
from tests.e2e.pki_flow import client_context, server_context, tls_handshake
from tests.pki.conftest import Federation, sign_custom


def _expired_copy(federation: Federation, paths: TlsPaths, name: str, usage, folder: Path) -> TlsPaths:
    """The same key, with a certificate of the same authority that expired yesterday."""
    key = keys.load_private_key(paths.private_key)
    now = dt.datetime.now(dt.timezone.utc)
    cert = sign_custom(
        federation.authority,
        key.public_key(),
        name,
        usage=usage,
        san=name,
        not_before=now - dt.timedelta(days=10),
        not_after=now - dt.timedelta(days=1),
    )
    folder.mkdir()
    expired = folder / "expired.crt"
    keys.write_pem(expired, cert)
    return TlsPaths(paths.cert_chain, expired, paths.private_key)


def test_mutual_tls_handshake(federation: Federation) -> None:
    for name in ("one", "two"):
        done = tls_handshake(server_context(federation.server), client_context(federation.client(name)))
        assert done.client_common_name == name
        assert done.server_common_name == "localhost"
        assert done.version == "TLSv1.3"


def test_server_requires_a_client_certificate(federation: Federation) -> None:
    with pytest.raises(ssl.SSLError):
        tls_handshake(server_context(federation.server), client_context(federation.client("one"), False))


def test_client_checks_the_aggregator_name(federation: Federation) -> None:
    with pytest.raises(ssl.SSLError, match=r"match|mismatch"):
        tls_handshake(
            server_context(federation.server), client_context(federation.client("one")), "other-host"
        )


def test_expired_client_certificate_is_refused(federation: Federation, tmp_path: Path) -> None:
    expired = _expired_copy(
        federation, federation.client("one"), "one", ExtendedKeyUsageOID.CLIENT_AUTH, tmp_path / "c"
    )
    with pytest.raises(ssl.SSLError, match="expired"):
        tls_handshake(server_context(federation.server), client_context(expired))


def test_expired_server_certificate_is_refused(federation: Federation, tmp_path: Path) -> None:
    expired = _expired_copy(
        federation, federation.server, "localhost", ExtendedKeyUsageOID.SERVER_AUTH, tmp_path / "s"
    )
    with pytest.raises(ssl.SSLError, match="expired"):
        tls_handshake(server_context(expired), client_context(federation.client("one")))


def test_foreign_authority_is_refused_both_ways(federation: Federation, foreign: Federation) -> None:
    with pytest.raises(
        ssl.SSLError, match=r"unknown ca|certificate verify failed|unable to get local issuer"
    ):
        tls_handshake(
            server_context(federation.server), client_context(_mixed(foreign.client("one"), federation))
        )
    with pytest.raises(ssl.SSLError, match="certificate verify failed"):
        tls_handshake(
            server_context(_mixed(foreign.server, federation)), client_context(federation.client("one"))
        )


def _mixed(paths: TlsPaths, trusting: Federation) -> TlsPaths:
    """A foreign node's certificate and key, trusting our chain (so it would accept us, but we refuse it)."""
    return TlsPaths(trusting.server.cert_chain, paths.certificate, paths.private_key)


def test_aggregator_certificate_cannot_act_as_client(federation: Federation) -> None:
    with pytest.raises(ssl.SSLError):
        tls_handshake(server_context(federation.server), client_context(federation.server))


def test_grpc_mutual_tls_and_per_call_check(federation: Federation) -> None:
    grpc = pytest.importorskip("grpc")
    from openfl_cli.pki.credentials import (
        Authorizer,
        client_credentials,
        peer_common_name,
        server_credentials,
    )
    from openfl_cli.pki.errors import NotAuthorized
    from openfl_cli.pki.revocation import remove

    authorizer = Authorizer(federation.aggregator, "plan/cols.yaml")

    def echo(request: bytes, context: grpc.ServicerContext) -> bytes:
        sender = request.decode()
        try:
            authorizer.check(context, sender)
        except NotAuthorized as refusal:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, refusal.reason)
        return f"hello {peer_common_name(context)}".encode()

    from concurrent import futures

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    handler = grpc.unary_unary_rpc_method_handler(echo)
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("test.Echo", {"Say": handler})])
    port = server.add_secure_port("localhost:0", server_credentials(federation.server))
    server.start()
    try:

        def call(name: str, sender: str) -> bytes:
            with grpc.secure_channel(
                f"localhost:{port}", client_credentials(federation.client(name))
            ) as channel:
                return channel.unary_unary("/test.Echo/Say")(sender.encode(), timeout=10)

        assert call("one", "one") == b"hello one"
        with pytest.raises(grpc.RpcError) as refused:
            call("one", "two")
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "does not match the sender" in refused.value.details()
        remove(federation.aggregator, "two")
        with pytest.raises(grpc.RpcError) as revoked:
            call("two", "two")
        assert "revoked" in revoked.value.details()
    finally:
        server.stop(None)
