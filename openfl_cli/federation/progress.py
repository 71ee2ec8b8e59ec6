"""What the aggregator and collaborators show while they work.

Round lines and task lines go to stdout (they are the commands' output, and scripts read them). On an
interactive stderr, rich draws live progress meanwhile: the round's bar of collaborators done and who is
still awaited, or the running task with its elapsed time; the aggregator ends with a table of the
metrics per round when stdout is a terminal. Elsewhere (a log file, CI) progress is an occasional log
line, so logs stay readable and rich is never imported.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TextIO

from openfl_cli.utils.console import LiveProgress, is_terminal, terminal_console

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import ProgressColumn

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


def round_line(summary: RoundSummary) -> str:
    best = " (best so far)" if summary.best_improved else ""
    return (
        f"round {summary.number + 1}/{summary.rounds}: {summary.done}/{summary.expected} collaborators"
        f" done, {format_metrics(summary.aggregated)}, {summary.seconds:.2f} s{best}"
    )


def _pending_text(pending: tuple[str, ...]) -> str:
    return ", ".join(pending[:4]) + (" ..." if len(pending) > 4 else "")


class _QuietStatus:
    """Progress off a terminal: a log line now and then, never a redraw."""

    def __init__(self) -> None:
        self._last_log = 0.0
        self._lock = threading.Lock()

    def show(self, text: str) -> None:
        with self._lock:
            if time.monotonic() - self._last_log >= QUIET_LOG_INTERVAL:
                self._last_log = time.monotonic()
                log.info("%s", text)

    def reset(self) -> None:
        with self._lock:
            self._last_log = time.monotonic()


def _round_columns() -> Sequence[str | ProgressColumn]:
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn

    return (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("collaborators done, {task.fields[elapsed]:.0f} s"),
        TextColumn("[dim]{task.fields[waiting]}"),
    )


def _task_columns() -> Sequence[str | ProgressColumn]:
    from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

    return (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())


class ConsoleReporter:
    """Prints a line per round, shows the round's progress and who the aggregator is waiting for (live on
    a terminal, when `live`), and ends with a table of the aggregated metrics (on a terminal, when
    `table`)."""

    def __init__(
        self,
        out: TextIO | None = None,
        err: TextIO | None = None,
        *,
        table: bool = True,
        live: bool = True,
        console: Console | None = None,
    ) -> None:
        self.out = out or sys.stdout
        err = err or sys.stderr
        if console is None and live and is_terminal(err):
            console = terminal_console(err)
        self._live = LiveProgress(console, _round_columns) if console is not None and live else None
        self._quiet = _QuietStatus()
        self.interval = 1.0 if self._live else 5.0
        self._table = table
        self._rows: dict[int, dict[str, float]] = {}
        self._bar_round: int | None = None
        self._lock = threading.Lock()

    def round_closed(self, summary: RoundSummary) -> None:
        with self._lock:
            if self._live is not None:
                self._live.stop()  # cleared before the round's line: nothing redraws over it
                self._bar_round = None
            self._quiet.reset()
            print(round_line(summary), file=self.out, flush=True)
            self._rows[summary.number + 1] = {
                f"{task}/{metric}": value
                for task, metrics in summary.aggregated.items()
                for metric, value in metrics.items()
            }
            if self._table and summary.number + 1 >= summary.rounds and is_terminal(self.out):
                from openfl_cli.federation.metrics.table import print_table

                print_table(self._rows, self.out)

    def waiting(self, status: WaitStatus) -> None:
        pending = _pending_text(status.pending) or "nobody"
        with self._lock:
            if self._live is None:
                self._quiet.show(
                    f"round {status.round_number + 1}/{status.rounds}: {status.done}/{status.expected}"
                    f" collaborators done, waiting for {pending} ({status.elapsed:.0f} s)"
                )
                return
            progress = self._live.start()
            if self._bar_round != status.round_number:
                for task_id in list(progress.task_ids):
                    progress.remove_task(task_id)
                progress.add_task("", total=status.expected, elapsed=0.0, waiting="")
                self._bar_round = status.round_number
            (task_id,) = progress.task_ids
            progress.update(
                task_id,
                description=f"round {status.round_number + 1}/{status.rounds}",
                total=status.expected,
                completed=status.done,
                elapsed=status.elapsed,
                waiting=f"waiting for {pending}",
            )

    def close(self) -> None:
        with self._lock:
            if self._live is not None:
                self._live.stop()


class TaskProgress:
    """The collaborator's current task: a live spinner with its elapsed time on a terminal, then a
    result line on stdout."""

    def __init__(
        self, out: TextIO | None = None, err: TextIO | None = None, *, console: Console | None = None
    ) -> None:
        self.out = out or sys.stdout
        err = err or sys.stderr
        if console is None and is_terminal(err):
            console = terminal_console(err)
        self._live = LiveProgress(console, _task_columns) if console is not None else None
        self._lock = threading.Lock()

    @contextmanager
    def task(self, label: str) -> Iterator[None]:
        if self._live is None:
            log.info("%s ...", label)
            yield
            return
        with self._lock:
            progress = self._live.start()
            task_id = progress.add_task(label, total=None)
        try:
            yield
        finally:
            with self._lock:
                progress.remove_task(task_id)
                if not progress.task_ids:
                    self._live.stop()

    def line(self, text: str) -> None:
        with self._lock:
            live = self._live.active if self._live is not None else None
            if live is not None and is_terminal(self.out):
                live.console.print(text, markup=False)  # the same screen: above the live spinner
            else:
                print(text, file=self.out, flush=True)
