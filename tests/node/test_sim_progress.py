"""The simulator's progress bar: redrawn on a terminal, cleared before the round's line, silent elsewhere."""

from __future__ import annotations

import io

from openfl_cli.node import sim_progress
from openfl_cli.node.sim_progress import RoundProgress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_bar_counts_collaborators_and_clears_when_the_round_is_done(monkeypatch) -> None:
    monkeypatch.setattr(sim_progress, "REDRAW_SECONDS", 0.0)
    screen = Terminal()
    progress = RoundProgress(stream=screen)
    progress.round_started(1, 3, 4)
    progress.collaborator_done()
    progress.collaborator_done()
    assert screen.getvalue().endswith("round 2/3 [" + "#" * 15 + "-" * 15 + "] 2/4 collaborators")
    progress.collaborator_done()
    progress.collaborator_done()
    assert screen.getvalue().endswith("\r\x1b[2K")  # cleared: the aggregator's round line comes next


def test_no_bar_off_a_terminal_or_when_disabled() -> None:
    for stream, enabled in ((io.StringIO(), True), (Terminal(), False)):
        progress = RoundProgress(enabled=enabled, stream=stream)
        progress.round_started(0, 1, 2)
        progress.collaborator_done()
        progress.close()
        assert stream.getvalue() == ""
