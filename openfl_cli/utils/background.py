"""One call run on its own thread, its outcome (value or exception) collected later by the caller."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

R = TypeVar("R")


class BackgroundCall(Generic[R]):
    """Starts `call()` at once; `outcome()` waits for it and returns its value or raises its exception
    in the caller's thread. A daemon thread: a process that must exit does not wait for it."""

    def __init__(self, call: Callable[[], R], name: str) -> None:
        self._value: R | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(call,), name=name, daemon=True)
        self._thread.start()

    def _run(self, call: Callable[[], R]) -> None:
        try:
            self._value = call()
        except BaseException as exc:  # handed to the caller by outcome()
            self._error = exc

    def outcome(self) -> R:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]  # set when no error was raised
