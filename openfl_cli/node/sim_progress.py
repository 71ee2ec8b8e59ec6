"""The simulator's live progress: a bar of the collaborators done in the current round and one bar
per task (results in / tasks handed out so far).

Drawn by rich on an interactive stderr; elsewhere (a log file, CI) it stays silent, rich is not
imported, and the aggregator's round lines tell the story.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from openfl_cli.utils.console import LiveProgress, is_terminal, terminal_console

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import ProgressColumn, TaskID

ROUND_BAR = "collaborators"


def _columns() -> Sequence[str | ProgressColumn]:
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

    return (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[unit]}"),
        TimeElapsedColumn(),
    )


class RoundProgress:
    def __init__(
        self, enabled: bool = True, stream: TextIO | None = None, *, console: Console | None = None
    ) -> None:
        stream = stream or sys.stderr
        if console is None and enabled and is_terminal(stream):
            console = terminal_console(stream)
        self._live = LiveProgress(console, _columns) if enabled and console is not None else None
        self._lock = threading.Lock()
        self._round: TaskID | None = None
        self._tasks: dict[str, TaskID] = {}  # a bar per task name
        self._assigned: dict[str, int] = {}  # how many collaborators were handed each task
        self._done = self._expected = 0

    @property
    def enabled(self) -> bool:
        return self._live is not None

    def round_started(self, round_number: int, rounds: int, expected: int) -> None:
        if self._live is None:
            return
        with self._lock:
            progress = self._live.start()
            for task_id in list(progress.task_ids):
                progress.remove_task(task_id)
            self._tasks.clear()
            self._assigned.clear()
            self._done, self._expected = 0, expected
            label = f"[bold]round {round_number + 1}/{rounds}"
            self._round = progress.add_task(label, total=expected, unit=ROUND_BAR)

    def task_started(self, task: str) -> None:
        """A collaborator was handed `task`: one more result to wait for on that task's bar."""
        if self._live is None:
            return
        with self._lock:
            progress = self._live.active
            if progress is None:
                return
            self._assigned[task] = self._assigned.get(task, 0) + 1
            if task in self._tasks:
                progress.update(self._tasks[task], total=self._assigned[task])
            else:
                self._tasks[task] = progress.add_task(f"  {task}", total=1, unit="results")

    def task_done(self, task: str) -> None:
        if self._live is None:
            return
        with self._lock:
            progress = self._live.active
            if progress is not None and task in self._tasks:
                progress.advance(self._tasks[task])

    def collaborator_done(self) -> None:
        if self._live is None:
            return
        with self._lock:
            progress = self._live.active
            if progress is None or self._round is None:
                return
            progress.advance(self._round)
            self._done += 1
            if self._done >= self._expected:
                self._live.stop()  # cleared: the aggregator prints the round's line next
                self._round = None

    def close(self) -> None:
        if self._live is not None:
            with self._lock:
                self._live.stop()

