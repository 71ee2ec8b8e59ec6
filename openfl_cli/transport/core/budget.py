"""A bound on the calls one authenticated sender holds at once, so that no sender can take the server's
worker threads from the others (each call in progress holds one thread, a long poll for a minute).

The server's pool is sized from it (`per_sender` calls for each expected peer, and a margin), so every
honest peer always finds a thread however hard another floods; a call over the bound is refused BUSY.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from openfl_cli.transport.messages import RefusalCode, Refused


class CallBudget:
    def __init__(self, per_sender: int) -> None:
        if per_sender < 1:
            raise ValueError(f"per_sender must be >= 1, got {per_sender}")
        self.per_sender = per_sender
        self._lock = threading.Lock()
        self._held: dict[str, int] = {}

    def take(self, sender: str) -> Callable[[], None]:
        """Count a call of `sender`; return what ends it (idempotent). Raises `Refused` (BUSY) when
        `sender` already holds `per_sender` calls."""
        with self._lock:
            held = self._held.get(sender, 0)
            if held >= self.per_sender:
                raise Refused(
                    RefusalCode.BUSY,
                    f"{sender} already holds {held} calls at once, the most one sender may;"
                    " retry when one has ended",
                )
            self._held[sender] = held + 1
        released = threading.Event()

        def release() -> None:
            if released.is_set():
                return
            released.set()
            with self._lock:
                left = self._held.get(sender, 1) - 1
                if left > 0:
                    self._held[sender] = left
                else:
                    self._held.pop(sender, None)

        return release

    def held(self, sender: str) -> int:
        with self._lock:
            return self._held.get(sender, 0)
