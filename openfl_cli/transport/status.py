"""Refusals on the wire: `Refused` <-> gRPC status code, details text and a trailing metadata key.

The details text is what the collaborator prints (`<code>: <reason>`); the `fx-refusal` trailer carries
the code so that the client rebuilds the same `Refused` without parsing text.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

import grpc

from openfl_cli.transport.messages import AggregatorRefused, RefusalCode, Refused

REFUSAL_KEY = "fx-refusal"

_STATUS: dict[RefusalCode, grpc.StatusCode] = {
    RefusalCode.NOT_AUTHORIZED: grpc.StatusCode.PERMISSION_DENIED,
    RefusalCode.PLAN_MISMATCH: grpc.StatusCode.FAILED_PRECONDITION,
    RefusalCode.LATE: grpc.StatusCode.FAILED_PRECONDITION,
    RefusalCode.DUPLICATE: grpc.StatusCode.ALREADY_EXISTS,
    RefusalCode.INVALID: grpc.StatusCode.INVALID_ARGUMENT,
    RefusalCode.UNKNOWN_TASK: grpc.StatusCode.NOT_FOUND,
    RefusalCode.BUSY: grpc.StatusCode.RESOURCE_EXHAUSTED,
}

__all__ = ["REFUSAL_KEY", "AggregatorRefused", "abort", "refusal_from", "status_of"]


def status_of(code: RefusalCode) -> grpc.StatusCode:
    return _STATUS[code]


def abort(context: grpc.ServicerContext, refusal: Refused, status: grpc.StatusCode | None = None) -> None:
    """End the call with `refusal` (raises, as `context.abort` does)."""
    context.set_trailing_metadata(((REFUSAL_KEY, refusal.code.value),))
    context.abort(status or status_of(refusal.code), f"{refusal.code.value}: {refusal.reason}")


def refusal_from(error: grpc.RpcError) -> AggregatorRefused | None:
    """The refusal an RPC error stands for, or None (a transport failure, maybe worth a retry)."""
    code = _trailer_code(error)
    if code is None:
        return None
    details = (error.details() or "") if hasattr(error, "details") else ""
    prefix = f"{code.value}: "
    reason = details[len(prefix) :] if details.startswith(prefix) else details
    return AggregatorRefused(code, reason)


def _trailer_code(error: grpc.RpcError) -> RefusalCode | None:
    # (key, value) pairs: grpc's metadata items are named tuples, which the stubs do not declare iterable
    trailing = cast(
        "Iterable[tuple[str, str | bytes]] | None",
        error.trailing_metadata() if hasattr(error, "trailing_metadata") else None,
    )
    for key, value in trailing or ():
        if key == REFUSAL_KEY:
            try:
                return RefusalCode(value)
            except ValueError:
                return RefusalCode.INVALID
    return None
