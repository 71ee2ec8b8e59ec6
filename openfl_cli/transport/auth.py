"""The check the server runs before every call: who is calling, are they allowed, same plan?

1. The caller names itself in call metadata (`fx-sender`) with its plan hash (`fx-plan-hash`).
2. With mutual TLS, the common name of the peer certificate must equal that name.
3. The authorizer (PKI: the name is in plan/cols.yaml and its certificate is not revoked) must accept it.
   Any exception from it refuses the call: authorization fails closed.
4. The plan hash must equal the aggregator's (checked after authentication so that strangers learn nothing).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from typing import Protocol

import grpc

from openfl_cli.transport.messages import RefusalCode, Refused

SENDER_KEY = "fx-sender"
PLAN_HASH_KEY = "fx-plan-hash"
_MAX_HEADER_CHARS = 512

log = logging.getLogger(__name__)


class Authorizer(Protocol):
    def check(self, context: grpc.ServicerContext, claimed_sender: str) -> None:
        """Raise (pki.errors.NotAuthorized) when `claimed_sender` may not call."""


class Denied(Exception):
    """A call refused before it reached the service; `status` distinguishes who-are-you from not-allowed."""

    def __init__(self, refusal: Refused, status: grpc.StatusCode) -> None:
        super().__init__(str(refusal))
        self.refusal = refusal
        self.status = status


def call_metadata(collaborator: str, plan_hash: str) -> tuple[tuple[str, str], ...]:
    """What a client attaches to every call."""
    return ((SENDER_KEY, collaborator), (PLAN_HASH_KEY, plan_hash))


def peer_common_name(context: grpc.ServicerContext) -> str | None:
    """Common name of the verified client certificate, None without one."""
    from openfl_cli.pki.credentials import peer_common_name as pki_peer_common_name

    return pki_peer_common_name(context)


class CallGuard:
    def __init__(
        self,
        plan_hash: Callable[[], str],
        *,
        check_peer_name: bool,
        authorizer: Authorizer | None,
    ) -> None:
        self._plan_hash = plan_hash
        self._check_peer_name = check_peer_name
        self._authorizer = authorizer

    def admit(self, context: grpc.ServicerContext) -> str:
        """The authenticated sender of this call; raises `Denied` otherwise."""
        metadata = {key: value for key, value in context.invocation_metadata() if isinstance(value, str)}
        sender = metadata.get(SENDER_KEY, "")
        if not sender or len(sender) > _MAX_HEADER_CHARS:
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
            try:
                self._authorizer.check(context, sender)
            except Exception as exc:
                if type(exc).__name__ != "NotAuthorized":
                    log.exception("authorizer failed on a call from %r: refused", sender)
                reason = str(getattr(exc, "reason", None) or exc or type(exc).__name__)
                reason = reason.removeprefix(f"{RefusalCode.NOT_AUTHORIZED.value}: ")
                raise _denied(reason, grpc.StatusCode.PERMISSION_DENIED) from None
        claimed_hash, expected_hash = metadata.get(PLAN_HASH_KEY, ""), self._plan_hash()
        if not hmac.compare_digest(claimed_hash.encode(), expected_hash.encode()):
            raise Denied(
                Refused(
                    RefusalCode.PLAN_MISMATCH,
                    f"collaborator {sender!r} runs plan {_short(claimed_hash)}, the aggregator runs"
                    f" {_short(expected_hash)}: use the aggregator's plan",
                ),
                grpc.StatusCode.FAILED_PRECONDITION,
            )
        return sender


def _denied(reason: str, status: grpc.StatusCode) -> Denied:
    return Denied(Refused(RefusalCode.NOT_AUTHORIZED, reason), status)


def _short(plan_hash: str) -> str:
    return f"{plan_hash[:12]}..." if len(plan_hash) > 12 else (plan_hash or "(none)")
