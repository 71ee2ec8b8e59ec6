"""Small value checkers: each returns the normalized value or raises ValueError('expected ..., got ...')."""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable
from typing import Any

Check = Callable[[Any], Any]
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _fail(expected: str, value: Any) -> ValueError:
    return ValueError(f"expected {expected}, got {value!r}")


def integer(minimum: int | None = None, maximum: int | None = None, what: str = "an integer") -> Check:
    def check(value: Any) -> int:
        # bool is an int in Python, never in a plan
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(what, value)
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise _fail(what, value)
        return value

    return check


positive_int = integer(1, what="a positive integer")


def positive_number(what: str = "a positive number of seconds") -> Check:
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(what, value)
        if not value > 0 or math.isnan(value):
            raise _fail(what, value)
        return value

    return check


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail("true or false", value)
    return value


def text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail("a non-empty string", value)
    return value


def identifier(value: Any) -> str:
    if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
        raise _fail("a Python identifier (a method name)", value)
    return value


def dotted_path(value: Any) -> str:
    if not isinstance(value, str) or not _DOTTED.fullmatch(value):
        raise _fail("a dotted Python path like 'package.module.name'", value)
    return value


def callback_path(value: Any) -> str:
    """A dotted function path; OpenFL's `{template: a.b.f}` form is accepted too."""
    if isinstance(value, dict) and set(value) == {"template"}:
        value = value["template"]
    return dotted_path(value)


def optional(check: Check) -> Check:
    def wrapped(value: Any) -> Any:
        return None if value is None else check(value)

    return wrapped


def choice(*options: str) -> Check:
    def check(value: Any) -> str:
        if isinstance(value, str) and value.upper() in options:
            return value.upper()
        raise _fail(f"one of {', '.join(options)}", value)

    return check


def mapping(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail("a mapping", value)
    return {str(k): v for k, v in value.items()}


def agg_addr(value: Any) -> str:
    from openfl_cli.errors import UsageError
    from openfl_cli.utils.names import check_fqdn

    if value == "auto":
        return value
    if not isinstance(value, str):
        raise _fail("a host name, an IP address or 'auto'", value)
    try:
        return check_fqdn(value)
    except UsageError:
        raise _fail("a host name, an IP address or 'auto'", value) from None


def ip_address(value: Any) -> str:
    import ipaddress

    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return str(ipaddress.ip_address(value.strip("[]")))
    raise _fail("an IP address of this machine: 0.0.0.0 (all IPv4 interfaces), :: or 127.0.0.1, ...", value)


def agg_port(value: Any) -> int | str:
    if value == "auto":
        return value
    return integer(1, 65535, "a port number from 1 to 65535 or 'auto'")(value)
