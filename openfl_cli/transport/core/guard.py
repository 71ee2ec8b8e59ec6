"""The check every call passes before its method runs; any doubt refuses the call (fail closed).

1. The caller names itself in the call metadata (`fx-sender`).
2. With client certificates, the common name of the peer's certificate must equal that name.
3. The authorizer (the PKI's: in the roster, not revoked) must accept the name; any exception refuses.
4. Each extra check of the service (the federation's plan hash) must accept the call.
Steps 3 and 4 run only for an authenticated caller, so that strangers learn nothing about the service.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Protocol

import grpc

from openfl_cli.transport.core.metadata import MAX_VALUE_CHARS, SENDER_KEY, text_metadata
from openfl_cli.transport.messages import RefusalCode, Refused
from openfl_cli.transport.status import status_of
from openfl_cli.transport.tls import peer_common_name

log = logging.getLogger(__name__)


class Authorizer(Protocol):
    def check(self, context: grpc.ServicerContext, claimed_sender: str) -> None:
        """Raise (pki.errors.NotAuthorized, PermissionError, ...) when `claimed_sender` may not call."""


class CallCheck(Protocol):
    def __call__(self, metadata: Mapping[str, str], sender: str) -> None:
        """Raise `Refused` to refuse the call of the authenticated `sender`."""


class Denied(Exception):
    """A call refused before it reached the service; `status` tells who-are-you from not-allowed."""

    def __init__(self, refusal: Refused, status: grpc.StatusCode) -> None:
        super().__init__(str(refusal))
        self.refusal = refusal
        self.status = status


class CallGuard:
    """`admit(context)` returns the authenticated sender of a call, or raises `Denied`.

    `check_peer_name` must be on whenever clients present certificates: it is what ties the claimed
    name to a key. An exception from an extra check other than `Refused` propagates (the call fails)."""

    def __init__(
        self,
        *,
        check_peer_name: bool,
        authorizer: Authorizer | None = None,
        checks: Sequence[CallCheck] = (),
    ) -> None:
        self._check_peer_name = check_peer_name
        self._authorizer = authorizer
        self._checks = tuple(checks)

    def admit(self, context: grpc.ServicerContext) -> str:
        metadata = text_metadata(context)
        sender = metadata.get(SENDER_KEY, "")
        if not sender or len(sender) > MAX_VALUE_CHARS:
            raise _denied("the call does not name its sender", grpc.StatusCode.UNAUTHENTICATED)
        if self._check_peer_name:
            common_name = peer_common_name(context)
            if common_name is None:
                raise _denied(f"{sender!r} presented no client certificate", grpc.StatusCode.UNAUTHENTICATED)
            if common_name != sender:
                raise _denied(
                    f"certificate common name {common_name!r} does not match the sender {sender!r}",
                    grpc.StatusCode.PERMISSION_DENIED,
                )
        if self._authorizer is not None:
            self._authorize(context, sender)
        for check in self._checks:
            try:
                check(metadata, sender)
            except Refused as refused:
                raise Denied(refused, status_of(refused.code)) from None
        return sender

    def _authorize(self, context: grpc.ServicerContext, sender: str) -> None:
        assert self._authorizer is not None
        try:
            self._authorizer.check(context, sender)
        except Exception as exc:
            expected = isinstance(exc, PermissionError) or getattr(exc, "reason", None) is not None
            if not expected:
                log.exception("authorizer failed on a call from %r: refused", sender)
            reason = str(getattr(exc, "reason", None) or exc or type(exc).__name__)
            reason = reason.removeprefix(f"{RefusalCode.NOT_AUTHORIZED.value}: ")
            raise _denied(reason, grpc.StatusCode.PERMISSION_DENIED) from None


def _denied(reason: str, status: grpc.StatusCode) -> Denied:
    return Denied(Refused(RefusalCode.NOT_AUTHORIZED, reason), status)
