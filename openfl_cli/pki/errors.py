"""Refusals of the certificate authority and of the per-call authorization check."""

from __future__ import annotations

from openfl_cli.errors import SecurityError


class CertificateError(SecurityError):
    """A certificate, request or package that must not be trusted or signed."""


class NotAuthorized(SecurityError):
    """A peer that may not make this call: no certificate, wrong name, not enrolled, or revoked."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"not authorized: {reason}")
