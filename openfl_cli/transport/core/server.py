"""A gRPC server on address:port serving the handlers of one or more services, with TLS or without."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent import futures

import grpc

from openfl_cli.errors import FxError, UsageError
from openfl_cli.transport.core.network import host_port, server_options
from openfl_cli.transport.limits import Limits
from openfl_cli.transport.tls import TlsMaterial, server_credentials

log = logging.getLogger(__name__)


class GrpcServer:
    """`start()` binds and returns the port (useful with port 0); `tls=None` serves without TLS.

    With `require_client_auth`, the handshake itself refuses clients without a certificate of the
    trusted chain; the handlers' guard then ties each call to that certificate."""

    def __init__(
        self,
        handlers: Sequence[grpc.GenericRpcHandler],
        address: str,
        port: int,
        tls: TlsMaterial | None,
        *,
        require_client_auth: bool = True,
        limits: Limits | None = None,
        max_workers: int = 8,
        role: str = "server",
    ) -> None:
        if tls is not None and not tls.has_identity:
            raise UsageError(f"the {role} needs its own certificate and private key to serve TLS")
        self.address = address
        self.role = role
        self.limits = limits or Limits()
        self._handlers = tuple(handlers)
        self._requested_port = port
        self._tls = tls
        self._require_client_auth = require_client_auth
        self._workers = max(1, max_workers)
        self._server: grpc.Server | None = None
        self.port = 0

    def start(self) -> int:
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="fx-rpc"),
            options=server_options(self.limits),
        )
        server.add_generic_rpc_handlers(self._handlers)
        target = host_port(self.address, self._requested_port)
        try:
            if self._tls is not None:
                port = server.add_secure_port(
                    target, server_credentials(self._tls, self._require_client_auth)
                )
            else:
                port = server.add_insecure_port(target)
        except RuntimeError as exc:
            raise FxError(f"cannot listen on {target}: {exc}") from None
        if port == 0:
            raise FxError(f"cannot listen on {target} (address in use or not local)")
        server.start()
        self._server, self.port = server, port
        log.info("%s listening on %s", self.role, host_port(self.address, port))
        return port

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server stops (True) or `timeout` passes (False)."""
        if self._server is None:
            return True
        return self._server.wait_for_termination(timeout)

    def stop(self, grace: float = 5.0) -> None:
        """Refuse new calls, let running ones finish for `grace` seconds, then cancel them."""
        if self._server is not None:
            self._server.stop(grace).wait()
            self._server = None
