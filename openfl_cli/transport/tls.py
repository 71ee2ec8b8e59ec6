"""gRPC credentials from the PEM files of a participant (CA chain, certificate, private key).

The PKI package owns these (`openfl_cli.pki.credentials`); this module delegates to it and keeps a minimal
equivalent so that the transport works and is tested on its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import grpc

from openfl_cli.errors import SecurityError


class TlsPaths(Protocol):
    """What `openfl_cli.pki.layout.TlsPaths` provides."""

    @property
    def cert_chain(self) -> Path: ...
    @property
    def certificate(self) -> Path: ...
    @property
    def private_key(self) -> Path: ...


def server_credentials(paths: TlsPaths, require_client_auth: bool) -> grpc.ServerCredentials:
    try:
        from openfl_cli.pki.credentials import server_credentials as pki_server_credentials
    except ImportError:
        root, chain, key = _read(paths.cert_chain), _read(paths.certificate), _read(paths.private_key)
        return grpc.ssl_server_credentials(
            [(key, chain)], root_certificates=root, require_client_auth=require_client_auth
        )
    return pki_server_credentials(paths, require_client_auth)  # type: ignore[arg-type]


def client_credentials(paths: TlsPaths, with_client_cert: bool) -> grpc.ChannelCredentials:
    try:
        from openfl_cli.pki.credentials import client_credentials as pki_client_credentials
    except ImportError:
        root = _read(paths.cert_chain)
        if not with_client_cert:
            return grpc.ssl_channel_credentials(root_certificates=root)
        return grpc.ssl_channel_credentials(
            root_certificates=root,
            private_key=_read(paths.private_key),
            certificate_chain=_read(paths.certificate),
        )
    return pki_client_credentials(paths, with_client_cert)  # type: ignore[arg-type]


def _read(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise SecurityError(f"cannot read {path}: {exc.strerror or exc}") from None
