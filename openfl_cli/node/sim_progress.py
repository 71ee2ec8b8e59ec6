"""The simulator's progress bar over the collaborators of the current round.

Redrawn in place on an interactive stderr, at most every `REDRAW_SECONDS`; elsewhere (a log file, CI)
it stays silent and the aggregator's round lines tell the story.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

REDRAW_SECONDS = 0.1
BAR_WIDTH = 30


class RoundProgress:
    def __init__(self, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled and self.stream.isatty()
        self._lock = threading.Lock()
        self._label = ""
        self._done = 0
        self._expected = 0
        self._drawn_at = 0.0

    def round_started(self, round_number: int, rounds: int, expected: int) -> None:
        with self._lock:
            self._label = f"round {round_number + 1}/{rounds}"
            self._done, self._expected = 0, expected
            self._draw(force=True)

    def collaborator_done(self) -> None:
        with self._lock:
            self._done += 1
            if self._done >= self._expected:
                self._clear()  # the aggregator prints the round's line next
            else:
                self._draw(force=False)

    def close(self) -> None:
        with self._lock:
            self._clear()

    def _clear(self) -> None:
        if self.enabled and self._label:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()

    def _draw(self, force: bool) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._drawn_at < REDRAW_SECONDS:
            return
        self._drawn_at = now
        filled = BAR_WIDTH * self._done // max(1, self._expected)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        self.stream.write(f"\r\x1b[2K{self._label} [{bar}] {self._done}/{self._expected} collaborators")
        self.stream.flush()
