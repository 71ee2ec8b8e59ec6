"""`fx envoy start`: an envoy's config and certificates in, a running envoy out, until a signal stops it."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType

from openfl_cli.envoy.config import load_envoy_config
from openfl_cli.envoy.envoy import Envoy
from openfl_cli.pki.credentials import read_tls_material
from openfl_cli.pki.layout import TlsPaths
from openfl_cli.transport.director.client import EnvoyClient
from openfl_cli.transport.tls import TlsMaterial
from openfl_cli.utils.names import check_collaborator_name

TLS_HINT = "fx envoy generate-cert-request` and `fx envoy certify --import"


def client_tls(
    root_certificate: Path, private_key: Path, certificate: Path, hint: str = TLS_HINT
) -> TlsMaterial:
    return read_tls_material(TlsPaths(root_certificate, certificate, private_key), hint)


def serve_envoy(
    name: str,
    config_path: Path,
    director_host: str,
    director_port: int,
    tls: TlsMaterial | None,
    folder: Path | None = None,
) -> None:
    check_collaborator_name(name)
    config = load_envoy_config(config_path, name)
    client = EnvoyClient(director_host, director_port, name, tls)
    envoy = Envoy(config, client, (folder or Path.cwd()).absolute())

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        envoy.run()
    finally:
        signal.signal(signal.SIGTERM, previous)
        envoy.stop()
        client.close()
