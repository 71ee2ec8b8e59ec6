"""`fx director start`: the director's config and certificates in, a serving director out, until a
signal stops it."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from types import FrameType

from openfl_cli.director.config import load_director_config
from openfl_cli.director.director import Director
from openfl_cli.pki.credentials import read_tls_material
from openfl_cli.pki.layout import TlsPaths
from openfl_cli.transport.core.network import host_port
from openfl_cli.transport.director.server import DirectorServer
from openfl_cli.transport.tls import TlsMaterial

log = logging.getLogger(__name__)

TLS_HINT = "fx director generate-cert-request` and `fx director certify"


def director_tls(root_certificate: Path, private_key: Path, certificate: Path) -> TlsMaterial:
    return read_tls_material(TlsPaths(root_certificate, certificate, private_key), TLS_HINT)


def serve_director(config_path: Path, tls: TlsMaterial | None, workdir: Path | None = None) -> None:
    """Serve until SIGTERM or SIGINT; prints `director listening on HOST:PORT` once it accepts calls."""
    config = load_director_config(config_path)
    director = Director(config, (workdir or Path.cwd() / ".fx-director").absolute())
    server = DirectorServer(director, director, config.listen_host, config.listen_port, tls)
    stopped = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        log.warning("signal %d: stopping the director", signum)
        stopped.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        port = server.start()
        print(f"director listening on {host_port(config.listen_host, port)}", flush=True)
        stopped.wait()
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        server.stop(grace=1.0)
        director.close()
