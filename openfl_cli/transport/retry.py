"""Bounded retries of calls that fail in transit (peer down, connection broken), never of answers.

A call signals a failure worth retrying by raising `TransportFailure`; anything else it raises (a
refusal, a security error) passes through at once. Retries run every `interval` seconds until `timeout`
seconds have passed since the first failure, then raise FxError naming the peer and the last failure.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from openfl_cli.errors import FxError

log = logging.getLogger(__name__)
R = TypeVar("R")


class TransportFailure(Exception):
    """The call did not reach its peer, or its answer did not come back: it may succeed later.

    `hint` is added to the final error (what a persistent failure of this kind may mean)."""

    def __init__(self, details: str, hint: str = "") -> None:
        super().__init__(details)
        self.details = details
        self.hint = hint


@dataclass(frozen=True)
class RetryPolicy:
    interval: float
    timeout: float
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("interval", "timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"retry {name} must be a number > 0, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"retry {name} must be finite, got {value!r}")

    def run(self, call: Callable[[], R], *, what: str, peer: str) -> R:
        """`call()`, retried on `TransportFailure`. `what` names the call and `peer` whom it goes to
        ("aggregator at host:port") in the warnings and the final error."""
        first_failure: float | None = None
        while True:
            try:
                return call()
            except TransportFailure as failure:
                now = self.clock()
                first_failure = now if first_failure is None else first_failure
                elapsed = now - first_failure
                if elapsed >= self.timeout:
                    raise FxError(
                        f"{peer} unreachable for {elapsed:.0f} s: {failure.details}{failure.hint}"
                    ) from None
                log.warning(
                    "%s: %s unavailable (%s); retrying in %.1f s", what, peer, failure.details, self.interval
                )
                self.sleep(min(self.interval, self.timeout - elapsed))
