"""Live output on a terminal through `rich`, imported only when a terminal is there to show it.

Off a terminal (a pipe, a log file, CI) callers print plain lines instead, so `rich` never loads and
their output stays what scripts and tests parse.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, ProgressColumn


def is_terminal(stream: IO[str]) -> bool:
    """Whether `stream` is an interactive terminal that can redraw lines (not a dumb one)."""
    try:
        interactive = stream.isatty()
    except (AttributeError, ValueError):  # a closed or minimal stream
        return False
    return interactive and os.environ.get("TERM", "") != "dumb"


def terminal_console(stream: IO[str]) -> Console:
    """A rich console writing to `stream`, treated as a terminal (callers checked `is_terminal`, or a
    test hands in a buffer)."""
    from rich.console import Console

    return Console(file=stream, force_terminal=True, highlight=False, soft_wrap=False)


@contextmanager
def logs_above(console: Console) -> Iterator[None]:
    """While a live display redraws on `console`, send the log lines bound for the same stream through
    the console, which prints them above the display instead of through it."""
    from rich.file_proxy import FileProxy

    stream = console.file
    swapped = [
        handler
        for handler in logging.getLogger().handlers
        if isinstance(handler, logging.StreamHandler) and handler.stream is stream
    ]
    proxy = FileProxy(console, stream)
    for handler in swapped:
        handler.setStream(proxy)
    try:
        yield
    finally:
        for handler in swapped:
            handler.setStream(stream)
        proxy.flush()


class LiveProgress:
    """A rich `Progress` drawn on `console` while work is under way and cleared when it stops; log lines
    meant for the same stream print above it meanwhile. `columns` builds the progress's columns (rich
    is imported only when the first display starts)."""

    def __init__(self, console: Console, columns: Callable[[], Sequence[str | ProgressColumn]]) -> None:
        self.console = console
        self._columns = columns
        self._progress: Progress | None = None
        self._logs = ExitStack()

    @property
    def active(self) -> Progress | None:
        return self._progress

    def start(self) -> Progress:
        """The running display, started if it was not."""
        if self._progress is None:
            from rich.progress import Progress

            # stdout and stderr stay as they are: other threads' prints are not this display's business
            progress = Progress(
                *self._columns(),
                console=self.console,
                transient=True,
                refresh_per_second=4,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._logs.enter_context(logs_above(self.console))
            progress.start()
            self._progress = progress
        return self._progress

    def stop(self) -> None:
        """Clear the display (the next `start` draws a new one)."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._logs.close()
