"""The documented certificate flow (TaskRunner API, STEP 2) with the real `fx`, for reuse by e2e tests.

`certify_federation` builds an aggregator workspace and one workspace per collaborator, each in its own
folder, as if on separate machines: packages travel between them by copying, as an operator would.
"""

from __future__ import annotations

import re
import shutil
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from openfl_cli.pki.layout import TlsPaths
from tests.conftest import run_fx

WORKSPACE = "federation"
_HASH = re.compile(r"is ([0-9a-f]{96})\b")


@dataclass(frozen=True)
class FederationDirs:
    aggregator: Path  # the aggregator's workspace (also the certificate authority)
    collaborators: dict[str, Path]  # name -> that collaborator's workspace


def certify_federation(
    root: Path,
    collaborators: list[str],
    fqdn: str = "localhost",
    template: str = "numpy/digits",
    *,
    source: Path | None = None,
    data_paths: dict[str, str] | None = None,
    prepare_aggregator: Callable[[Path], None] | None = None,
    prepare_collaborator: Callable[[Path], None] | None = None,
) -> FederationDirs:
    """Create, initialize and certify a federation under `root`; collaborator i gets data path i+1
    (or its entry of `data_paths`). `source`: start from this workspace (an exported FedJob) instead of
    `fx workspace create` with `template`. `prepare_aggregator` runs on the aggregator's workspace right
    after it is created (before `fx plan initialize`, which may build the data loader), and
    `prepare_collaborator` on each collaborator's right after its import (data never travels)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    aggregator = root / "aggregator" / WORKSPACE
    if source is not None:
        shutil.copytree(source, aggregator)
    else:
        run_fx(["workspace", "create", "--prefix", str(aggregator), "--template", template], cwd=root)
    if prepare_aggregator is not None:
        prepare_aggregator(aggregator)
    run_fx(["plan", "initialize", "-a", fqdn], cwd=aggregator)
    run_fx(["workspace", "certify"], cwd=aggregator)
    run_fx(["aggregator", "generate-cert-request", "--fqdn", fqdn], cwd=aggregator)
    run_fx(["aggregator", "certify", "--fqdn", fqdn, "-s"], cwd=aggregator)
    run_fx(["workspace", "export"], cwd=aggregator)
    archive = aggregator / f"{WORKSPACE}.zip"
    inbox = root / "aggregator" / "inbox"
    inbox.mkdir(exist_ok=True)
    workspaces: dict[str, Path] = {}
    for index, name in enumerate(collaborators, start=1):
        node = root / f"collaborator_{name}"
        node.mkdir()
        shutil.copy(archive, node)  # "copy the workspace archive to each collaborator node"
        run_fx(["workspace", "import", "--archive", archive.name], cwd=node)
        workspace = node / WORKSPACE
        if prepare_collaborator is not None:
            prepare_collaborator(workspace)
        data = (data_paths or {}).get(name, str(index))
        run_fx(["collaborator", "create", "-n", name, "-d", data, "-s"], cwd=workspace)
        printed = run_fx(["collaborator", "generate-cert-request", "-n", name, "-s"], cwd=workspace).stdout
        request_hash = request_hash_in(printed)
        request = shutil.copy(workspace / f"col_{name}_to_agg_cert_request.zip", inbox)
        certify = ["collaborator", "certify", "--request-pkg", str(request), "--request-hash", request_hash]
        run_fx(certify, cwd=aggregator)
        signed = shutil.copy(aggregator / f"agg_to_col_{name}_signed_cert.zip", node)
        run_fx(["collaborator", "certify", "--import", str(signed)], cwd=workspace)
        workspaces[name] = workspace
    return FederationDirs(aggregator, workspaces)


def request_hash_in(output: str) -> str:
    """The request hash `fx ... generate-cert-request` printed."""
    found = _HASH.search(output)
    if not found:
        raise AssertionError(f"no request hash in the output:\n{output}")
    return found.group(1)


def server_context(paths: TlsPaths, require_client_auth: bool = True) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(paths.certificate, paths.private_key)
    context.load_verify_locations(paths.cert_chain)
    context.verify_mode = ssl.CERT_REQUIRED if require_client_auth else ssl.CERT_NONE
    return context


def client_context(paths: TlsPaths, with_client_cert: bool = True) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies the server's certificate and name
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_verify_locations(paths.cert_chain)
    if with_client_cert:
        context.load_cert_chain(paths.certificate, paths.private_key)
    return context


@dataclass(frozen=True)
class Handshake:
    version: str
    client_common_name: str  # as the server saw the client's certificate
    server_common_name: str  # as the client saw the server's certificate


def tls_handshake(server: ssl.SSLContext, client: ssl.SSLContext, hostname: str = "localhost") -> Handshake:
    """A TLS handshake over a real localhost socket; raises ssl.SSLError on either side's refusal.

    With TLS 1.3 the server checks the client's certificate after the client has finished, so both
    sides exchange one message: a refused client certificate then shows up on both.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    outcome: dict[str, object] = {}

    def serve() -> None:
        try:
            connection, _ = listener.accept()
            with server.wrap_socket(connection, server_side=True) as tls:
                outcome["client"] = _common_name(tls.getpeercert())
                tls.sendall(tls.recv(16))
        except (OSError, ssl.SSLError) as error:
            outcome["server_error"] = error

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            client.wrap_socket(raw, server_hostname=hostname) as tls,
        ):
            version = tls.version() or ""
            server_name = _common_name(tls.getpeercert())
            tls.sendall(b"ping")
            echoed = tls.recv(16)
    except (OSError, ssl.SSLError) as error:
        thread.join(10)
        raise ssl.SSLError(f"client: {error}; server: {outcome.get('server_error')}") from error
    finally:
        listener.close()
    thread.join(10)
    if "server_error" in outcome or echoed != b"ping":
        raise ssl.SSLError(f"server: {outcome.get('server_error')}")
    return Handshake(version, str(outcome["client"]), server_name)


def _common_name(peer: dict | None) -> str:
    for rdn in (peer or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return value
    return ""
