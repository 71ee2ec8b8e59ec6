"""What the aggregator and collaborators show while they work.

Round lines and task lines go to stdout (they are the commands' output). Waiting progress is a line
redrawn in place on an interactive stderr, and an occasional log line otherwise (logs stay readable).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol, TextIO

log = logging.getLogger(__name__)

QUIET_LOG_INTERVAL = 30.0  # seconds between progress log lines when stderr is not a terminal


@dataclass(frozen=True)
class RoundSummary:
    number: int
    rounds: int
    done: int
    expected: int
    aggregated: Mapping[str, Mapping[str, float]]
    seconds: float
    best_improved: bool


@dataclass(frozen=True)
class WaitStatus:
    round_number: int
    rounds: int
    done: int
    expected: int
    pending: tuple[str, ...]
    elapsed: float


class AggregatorReporter(Protocol):
    interval: float

    def round_closed(self, summary: RoundSummary) -> None: ...
    def waiting(self, status: WaitStatus) -> None: ...


def format_metrics(aggregated: Mapping[str, Mapping[str, float]]) -> str:
    parts = [
        f"{task} {metric}={value:.4g}"
        for task, metrics in aggregated.items()
        for metric, value in metrics.items()
    ]
    return ", ".join(parts) if parts else "no metrics"


class _Status:
    """One status line redrawn in place (interactive) or logged now and then."""

    def __init__(self, stream: TextIO, interactive: bool) -> None:
        self.stream = stream
        self.interactive = interactive
        self._last_log = 0.0
        self._shown = False
        self._lock = threading.Lock()

    def show(self, text: str) -> None:
        with self._lock:
            if self.interactive:
                self.stream.write(f"\r\x1b[2K{text}")
                self.stream.flush()
                self._shown = True
            elif time.monotonic() - self._last_log >= QUIET_LOG_INTERVAL:
                self._last_log = time.monotonic()
                log.info("%s", text)

    def clear(self) -> None:
        with self._lock:
            if self._shown:
                self.stream.write("\r\x1b[2K")
                self.stream.flush()
                self._shown = False
            self._last_log = time.monotonic()


class ConsoleReporter:
    """Prints a line per round; shows who the aggregator is waiting for."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        err = err or sys.stderr
        self._status = _Status(err, err.isatty())
        self.interval = 1.0 if self._status.interactive else 5.0

    def round_closed(self, summary: RoundSummary) -> None:
        self._status.clear()
        best = " (best so far)" if summary.best_improved else ""
        print(
            f"round {summary.number + 1}/{summary.rounds}: {summary.done}/{summary.expected} collaborators"
            f" done, {format_metrics(summary.aggregated)}, {summary.seconds:.2f} s{best}",
            file=self.out,
            flush=True,
        )

    def waiting(self, status: WaitStatus) -> None:
        pending = ", ".join(status.pending[:4]) + (" ..." if len(status.pending) > 4 else "")
        self._status.show(
            f"round {status.round_number + 1}/{status.rounds}: {status.done}/{status.expected} collaborators"
            f" done, waiting for {pending or 'nobody'} ({status.elapsed:.0f} s)"
        )


class TaskProgress:
    """The collaborator's current task: a live elapsed-time line on a terminal, then a result line."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        err = err or sys.stderr
        self._status = _Status(err, err.isatty())

    @contextmanager
    def task(self, label: str) -> Iterator[None]:
        if not self._status.interactive:
            log.info("%s ...", label)
            yield
            return
        stop = threading.Event()
        started = time.monotonic()

        def tick() -> None:
            while not stop.wait(0.5):
                self._status.show(f"{label} ... {time.monotonic() - started:.0f} s")

        ticker = threading.Thread(target=tick, name="fx-progress", daemon=True)
        self._status.show(f"{label} ...")
        ticker.start()
        try:
            yield
        finally:
            stop.set()
            ticker.join()
            self._status.clear()

    def line(self, text: str) -> None:
        self._status.clear()
        print(text, file=self.out, flush=True)
