"""The quickstart's live view of its federation, fed by the participants' relayed output lines.

On a terminal, rich keeps a bar of the rounds the aggregator closed and, per collaborator, its last
finished task, below the relayed lines (printed above them as they come). Elsewhere the lines pass
through untouched and rich is not imported.
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, cast

from openfl_cli.utils.console import LiveProgress, is_terminal, terminal_console

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import ProgressColumn, TaskID

# "aggregator   | round 2/3: 2/2 collaborators done, ..." and "site1 | round 2/3 train: loss=..."
_RELAYED = re.compile(r"^(?P<label>\S+)\s*\| (?P<text>.*)$")
_ROUND_CLOSED = re.compile(r"^round (?P<number>\d+)/\d+: ")
_TASK_DONE = re.compile(r"^(?P<task>round \d+/\d+ \S+): ")

AGGREGATOR = "aggregator"


def _columns() -> Sequence[str | ProgressColumn]:
    from rich.progress import BarColumn, TextColumn, TimeElapsedColumn

    return (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[count]}"),
        TextColumn("[dim]{task.fields[status]}"),
        TimeElapsedColumn(),
    )


class _LineBuffer(io.TextIOBase):
    """What the relay prints to: whole lines go to `FederationProgress.line`."""

    def __init__(self, owner: FederationProgress) -> None:
        super().__init__()
        self._owner = owner
        self._pending = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            *lines, self._pending = (self._pending + text).split("\n")
            for line in lines:
                self._owner.line(line)
        return len(text)


class FederationProgress:
    def __init__(
        self, echo: IO[str], rounds: int, collaborators: Sequence[str], *, console: Console | None = None
    ) -> None:
        self.echo = echo
        if console is None and is_terminal(echo):
            console = terminal_console(echo)
        self._live = LiveProgress(console, _columns) if console is not None else None
        self._rounds = rounds
        self._collaborators = tuple(collaborators)
        self._bars: dict[str, TaskID] = {}  # by relayed label: the aggregator's and each collaborator's
        self._tasks_done: dict[str, int] = {}
        self._lock = threading.Lock()

    @property
    def stream(self) -> IO[str]:
        """Where the relay prints: `echo` itself off a terminal, else a feed of the live view."""
        return self.echo if self._live is None else cast(IO[str], _LineBuffer(self))

    def line(self, line: str) -> None:
        with self._lock:
            assert self._live is not None
            progress = self._live.start()
            if not self._bars:
                self._bars[AGGREGATOR] = progress.add_task(
                    "[bold]rounds", total=self._rounds, count=f"0/{self._rounds}", status=""
                )
                for name in self._collaborators:  # no known total: a pulsing bar while it works
                    self._bars[name] = progress.add_task(f"  {name}", total=None, count="0 tasks", status="")
            self._live.console.print(line, markup=False, highlight=False)  # above the bars
            relayed = _RELAYED.match(line)
            if relayed is None or relayed["label"] not in self._bars:
                return
            bar, text = self._bars[relayed["label"]], relayed["text"]
            if relayed["label"] == AGGREGATOR:
                closed = _ROUND_CLOSED.match(text)
                if closed is not None:
                    number = int(closed["number"])
                    progress.update(bar, completed=number, count=f"{number}/{self._rounds}")
            else:
                done = _TASK_DONE.match(text)
                if done is not None:
                    self._tasks_done[relayed["label"]] = tasks = self._tasks_done.get(relayed["label"], 0) + 1
                    progress.update(bar, count=f"{tasks} tasks", status=f"last: {done['task']}")

    def close(self) -> None:
        """Clear the live view (the relayed lines stay above it)."""
        with self._lock:
            if self._live is not None:
                self._live.stop()
