"""The client side of the core: a channel from TLS material, and gRPC errors sorted by what to do.

A refusal (the `fx-refusal` trailer) raises `AggregatorRefused` at once; a certificate check that failed
on our side raises SecurityError; other answers raise FxError; failures of the connection raise
`TransportFailure`, which `RetryPolicy` retries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import grpc

from openfl_cli.errors import FxError, SecurityError
from openfl_cli.transport.core.network import Option
from openfl_cli.transport.messages import RefusalCode
from openfl_cli.transport.retry import TransportFailure
from openfl_cli.transport.status import refusal_from
from openfl_cli.transport.tls import TlsMaterial, channel_credentials

R = TypeVar("R")

# Failures of the connection rather than answers of the server.
RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.ABORTED,
    }
)
# Marks of a certificate check that failed on our side (wrong CA, wrong server name): retrying cannot
# help. When the server rejects OUR certificate, TLS 1.3 only shows us a closed socket, which looks
# like any network failure: that case is retried and the final error says what it may be.
_TLS_FAILURE_MARKS = ("certificate", "verification check failed", "alert")


def open_channel(
    target: str, tls: TlsMaterial | None, options: Sequence[Option], *, with_client_cert: bool = True
) -> grpc.Channel:
    """A channel to `target`; `tls=None` opens it without TLS."""
    if tls is None:
        return grpc.insecure_channel(target, options=list(options))
    return grpc.secure_channel(target, channel_credentials(tls, with_client_cert), options=list(options))


@dataclass(frozen=True)
class RemotePeer:
    """Whom a client talks to, for its error messages: "aggregator at host:port"."""

    role: str
    target: str
    use_tls: bool
    client_role: str = "client"

    def __str__(self) -> str:
        return f"{self.role} at {self.target}"

    def translated(self, what: str, call: Callable[[], R]) -> R:
        """`call()`, its gRPC errors raised as refusals, security errors, FxError or TransportFailure."""
        try:
            return call()
        except grpc.RpcError as error:
            raise self.failure(what, error) from None

    def failure(self, what: str, error: grpc.RpcError) -> Exception:
        refusal = refusal_from(error)
        if refusal is not None and refusal.code is RefusalCode.BUSY:  # our own calls in flight end soon
            return TransportFailure(refusal.reason)
        if refusal is not None:
            return refusal
        details = _details(error)
        if any(mark in details.lower() for mark in _TLS_FAILURE_MARKS):
            return SecurityError(f"TLS connection to the {self} refused: {details}")
        code = error.code() if hasattr(error, "code") else None
        if code not in RETRYABLE:
            return FxError(f"{what} failed at the {self.role} {self.target}: {details}")
        rejected = self.use_tls and "socket closed" in details.lower()
        hint = (
            f" (if the {self.role} is running, it may have rejected this {self.client_role}'s certificate)"
            if rejected
            else ""
        )
        return TransportFailure(details, hint)


def _details(error: grpc.RpcError) -> str:
    details = error.details() if hasattr(error, "details") else None
    return details or str(error)
