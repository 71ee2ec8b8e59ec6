"""Each step's stdout and stderr: kept per participant and step, and printed live with a prefix."""

from __future__ import annotations

import io
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TextIO


@dataclass(frozen=True)
class StepOutput:
    participant: str
    step: str
    stdout: str
    stderr: str
    seconds: float = 0.0  # wall time of the step's own code
    started: float = 0.0  # when it began, in seconds since the epoch


class LineForwarder(io.TextIOBase):
    """A text stream that echoes to `echo` and hands each complete line to `on_line` (the services'
    way to send a step's output to the user as it is printed)."""

    def __init__(self, echo: TextIO | None, on_line: Callable[[str], None]) -> None:
        self._echo = echo
        self._on_line = on_line
        self._pending = ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            if self._echo is not None:
                self._echo.write(text)
            lines = (self._pending + text).split("\n")
            self._pending = lines.pop()
            for line in lines:
                self._on_line(line)
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if self._echo is not None:
                self._echo.flush()
            if self._pending:
                self._on_line(self._pending)
                self._pending = ""


class _Tee(LineForwarder):
    """Keeps what is written, and passes each complete line on to `stream` behind `prefix`."""

    def __init__(self, stream: TextIO | None, prefix: str) -> None:
        super().__init__(None, self._pass_on)
        self.kept = io.StringIO()
        self._stream = stream
        self._prefix = prefix

    def write(self, text: str) -> int:
        with self._lock:
            self.kept.write(text)
        return super().write(text) if self._stream is not None else len(text)

    def _pass_on(self, line: str) -> None:
        assert self._stream is not None
        self._stream.write(f"{self._prefix}{line}\n")
        self._stream.flush()


@contextmanager
def captured(participant: str, step: str, live: bool = True) -> Iterator[list[StepOutput]]:
    """Capture a step's output; the list yielded holds its StepOutput once the block ends."""
    prefix = f"[{participant}/{step}] "
    out = _Tee(sys.stdout if live else None, prefix)
    err = _Tee(sys.stderr if live else None, prefix)
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    result: list[StepOutput] = []
    began = time.time()
    started = time.perf_counter()
    try:
        yield result
    finally:
        seconds = time.perf_counter() - started
        sys.stdout, sys.stderr = saved
        out.flush()
        err.flush()
        result.append(StepOutput(participant, step, out.kept.getvalue(), err.kept.getvalue(), seconds, began))


@contextmanager
def forwarded_output(
    on_stdout: Callable[[str], None], on_stderr: Callable[[str], None], echo: bool = True
) -> Iterator[None]:
    """While the block runs, this process's stdout and stderr lines also go to the callbacks."""
    saved = sys.stdout, sys.stderr
    out = LineForwarder(saved[0] if echo else None, on_stdout)
    err = LineForwarder(saved[1] if echo else None, on_stderr)
    sys.stdout, sys.stderr = out, err
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
        out.flush()
        err.flush()
