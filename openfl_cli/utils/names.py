"""Checks for names that become file names (collaborators, FQDNs)."""

from __future__ import annotations

import re

from openfl_cli.errors import UsageError

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


def check_collaborator_name(name: str) -> str:
    """A collaborator name is letters, digits, `-`, `_` and `.`, and never `.` or `..`."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or set(name) == {"."}:
        raise UsageError(
            f"invalid collaborator name {name!r}: expected 1 to 128 letters, digits, '-', '_' or '.' "
            "(no path separators, not '.' or '..')"
        )
    return name


def check_fqdn(fqdn: str) -> str:
    """An FQDN or IP address used in file names and certificates."""
    if not isinstance(fqdn, str) or not re.fullmatch(r"[A-Za-z0-9_.:-]{1,253}", fqdn) or set(fqdn) == {"."}:
        raise UsageError(f"invalid FQDN {fqdn!r}: expected a host name or an IP address")
    return fqdn


def machine_fqdn() -> str:
    """The FQDN from the `FQDN` environment variable, else the machine's own."""
    import os
    import socket

    return os.environ.get("FQDN") or socket.getfqdn()
