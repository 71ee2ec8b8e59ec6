"""Call metadata every client sends: the name it claims (checked against its certificate by the guard)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import grpc

SENDER_KEY = "fx-sender"
MAX_VALUE_CHARS = 512  # a longer claimed name or header value is refused unread


def sender_metadata(sender: str, *pairs: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    """What a client attaches to every call: its name, then the service's own `pairs`."""
    return ((SENDER_KEY, sender), *pairs)


def text_metadata(context: grpc.ServicerContext) -> dict[str, str]:
    """The call's text metadata (binary values are ignored)."""
    return {key: value for key, value in context.invocation_metadata() if isinstance(value, str)}
