"""gRPC credentials of a participant: the PKI builds them from its PEM files (chain, certificate, key).

Kept as the transport's one entry point so that server and client never read key files themselves.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import grpc


class TlsPaths(Protocol):
    """What `openfl_cli.pki.layout.TlsPaths` provides."""

    @property
    def cert_chain(self) -> Path: ...
    @property
    def certificate(self) -> Path: ...
    @property
    def private_key(self) -> Path: ...


def server_credentials(paths: TlsPaths, require_client_auth: bool) -> grpc.ServerCredentials:
    from openfl_cli.pki.credentials import server_credentials as pki_server_credentials

    return pki_server_credentials(paths, require_client_auth)  # type: ignore[arg-type]


def client_credentials(paths: TlsPaths, with_client_cert: bool) -> grpc.ChannelCredentials:
    from openfl_cli.pki.credentials import client_credentials as pki_client_credentials

    return pki_client_credentials(paths, with_client_cert)  # type: ignore[arg-type]
