"""Writes a closed round's outputs in the background while the next round already runs.

Safe for resumption: the next round cannot close before this round is committed (the aggregator waits
for the writer first), and a round killed before its commit is redone by a restarted aggregator, which
the collaborators follow (training is deterministic given the round). At most one round is pending, so
memory holds at most one extra model (the round's starting model, until `best` is written).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from openfl_cli.errors import FxError

log = logging.getLogger(__name__)


class BackgroundWriter:
    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def submit(self, work: Callable[[], None]) -> None:
        """Run `work` in the background once the previous work is done (raises its error, if any)."""
        self.wait()
        self._thread = threading.Thread(target=self._run, args=(work,), name="fx-round-writer", daemon=True)
        self._thread.start()

    def wait(self) -> None:
        """Block until the pending work is done; re-raise its error in the caller."""
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()
        error, self._error = self._error, None
        if isinstance(error, FxError):
            raise error
        if error is not None:
            raise FxError(f"writing a round's outputs failed: {type(error).__name__}: {error}") from error

    def _run(self, work: Callable[[], None]) -> None:
        try:
            work()
        except BaseException as exc:  # handed to the aggregator's loop by wait()
            log.error("writing a round's outputs failed: %s", exc)
            self._error = exc
