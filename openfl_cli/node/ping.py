"""`fx collaborator ping`: is the aggregator reachable, does the TLS handshake succeed both ways, is the
collaborator authorized, do the plans match? Each step runs only if the previous one passed."""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from openfl_cli.errors import FxError, SecurityError
from openfl_cli.node.collaborator import open_client
from openfl_cli.node.common import address_of, load_plan, require_tls_files
from openfl_cli.transport.messages import RefusalCode, Refused

CONNECT_TIMEOUT = 5.0
# The HTTP/2 client preface and an empty SETTINGS frame: the server answers with its SETTINGS once it
# accepted our certificate (TLS 1.3 reports a refused client certificate only on the first read).
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


@dataclass(frozen=True)
class PingResult:
    ok: bool
    line: str


def ping_aggregator(
    name: str, plan_path: str | Path = "plan/plan.yaml", data_config: str | Path = "plan/data.yaml"
) -> PingResult:
    from openfl_cli.utils.names import check_collaborator_name

    check_collaborator_name(name)
    plan = load_plan(plan_path, None, data_config)
    spec = plan.experiment()
    network = spec.network
    if network.use_tls:  # a missing file is named before anything connects, as `start` does
        require_tls_files(spec.workspace, name, network.require_client_auth)
    address, port = address_of(network)
    where = f"aggregator {address}:{port}"
    try:
        socket.create_connection((address, port), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        return PingResult(False, f"{where} unreachable: {exc.strerror or exc}")
    steps = [f"{where} reachable"]
    if network.use_tls:
        try:
            _tls_handshake(spec.workspace, name, address, port, network.require_client_auth)
        except (OSError, FxError) as exc:
            return PingResult(False, "; ".join([*steps, f"TLS handshake failed: {exc}"]))
        steps.append("TLS handshake ok" + ("" if network.require_client_auth else " (no client certificate)"))
    else:
        steps.append("TLS off")
    client = open_client(
        spec, plan, name, with_pipeline=False, reconnect_interval=1.0, reconnect_timeout=CONNECT_TIMEOUT
    )
    try:
        reply = client.ping()
    except Refused as refused:
        if refused.code is RefusalCode.PLAN_MISMATCH:
            steps.append(f"{name} authorized")
        return PingResult(False, "; ".join([*steps, str(refused)]))
    except FxError as exc:
        return PingResult(False, "; ".join([*steps, str(exc)]))
    finally:
        client.close()
    current = min(reply.round_number + 1, reply.rounds_to_train)
    steps += [f"{name} authorized", f"plan hash matches (round {current} of {reply.rounds_to_train})"]
    return PingResult(True, "; ".join(steps))


def _tls_handshake(workspace: Path, name: str, address: str, port: int, client_auth: bool) -> None:
    from openfl_cli.pki.layout import collaborator_tls_paths

    paths = collaborator_tls_paths(workspace, name)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cafile=str(paths.cert_chain))
        if client_auth:
            context.load_cert_chain(str(paths.certificate), str(paths.private_key))
    except (OSError, ssl.SSLError) as exc:
        raise SecurityError(f"cannot load this collaborator's TLS files under cert/: {exc}") from None
    context.set_alpn_protocols(["h2"])
    with (
        socket.create_connection((address, port), timeout=CONNECT_TIMEOUT) as raw,
        context.wrap_socket(raw, server_hostname=address) as tls,
    ):
        tls.sendall(_H2_PREFACE)
        try:
            answer = tls.recv(64)
        except ssl.SSLError as exc:
            raise SecurityError(f"the aggregator refused this certificate ({exc.reason or exc})") from None
        if not answer:
            raise SecurityError("the aggregator closed the connection (certificate refused?)")
