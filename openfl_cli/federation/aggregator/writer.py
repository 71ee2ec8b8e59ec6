"""Writes a closed round's outputs in the background while the next round already runs.

Safe for resumption: the next round cannot close before this round is committed (the aggregator waits
for the writer first), and a round killed before its commit is redone by a restarted aggregator, which
the collaborators follow (training is deterministic given the round). At most one round is pending, so
memory holds at most one extra model (the round's starting model, until `best` is written).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from openfl_cli.errors import FxError
from openfl_cli.utils.background import BackgroundCall

log = logging.getLogger(__name__)


class BackgroundWriter:
    def __init__(self) -> None:
        self._pending: BackgroundCall[None] | None = None

    def submit(self, work: Callable[[], None]) -> None:
        """Run `work` in the background once the previous work is done (raises its error, if any)."""
        self.wait()
        self._pending = BackgroundCall(lambda: _logged(work), "fx-round-writer")

    def wait(self, *, raising: bool = True) -> None:
        """Block until the pending work is done; re-raise its error in the caller (`raising=False`:
        after another error, which it must not hide; the work logged its own already)."""
        pending, self._pending = self._pending, None
        if pending is None:
            return
        try:
            pending.outcome()
        except FxError:
            if raising:
                raise
        except BaseException as error:
            if not raising:
                return
            raise FxError(f"writing a round's outputs failed: {type(error).__name__}: {error}") from error


def _logged(work: Callable[[], None]) -> None:
    try:
        work()
    except BaseException as exc:  # logged when it happens; the aggregator's loop sees it in wait()
        log.error("writing a round's outputs failed: %s", exc)
        raise
