"""The simulator's live progress: a round bar and a bar per task on a terminal (drawn by rich), cleared
before the round's line, silent elsewhere."""

from __future__ import annotations

import io

from rich.console import Console

from openfl_cli.node.sim_progress import RoundProgress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_bars_count_collaborators_and_tasks_and_clear_when_the_round_is_done() -> None:
    console = Console(file=Terminal(), force_terminal=True, record=True, width=120)
    progress = RoundProgress(console=console)
    progress.round_started(1, 3, 2)
    for _ in range(2):
        progress.task_started("train")
        progress.task_started("aggregated_model_validation")
    progress.task_done("aggregated_model_validation")
    progress.task_done("train")
    progress.task_done("aggregated_model_validation")
    progress.collaborator_done()
    live = progress._live.active  # type: ignore[union-attr]
    assert live is not None
    live.refresh()
    screen = console.export_text()
    assert "round 2/3" in screen and "1/2 collaborators" in screen
    assert "train" in screen and "1/2 results" in screen
    assert "aggregated_model_validation" in screen and "2/2 results" in screen
    progress.task_done("train")
    progress.collaborator_done()
    assert progress._live.active is None  # type: ignore[union-attr]  # the aggregator's line comes next
    progress.round_started(2, 3, 1)  # a fresh display with the next round's bars only
    live = progress._live.active  # type: ignore[union-attr]
    assert live is not None and [task.description for task in live.tasks] == ["[bold]round 3/3"]
    progress.close()
    assert progress._live.active is None  # type: ignore[union-attr]


def test_no_bar_off_a_terminal_or_when_disabled() -> None:
    for stream, enabled in ((io.StringIO(), True), (Terminal(), False)):
        progress = RoundProgress(enabled=enabled, stream=stream)
        assert not progress.enabled
        progress.round_started(0, 1, 2)
        progress.task_started("train")
        progress.task_done("train")
        progress.collaborator_done()
        progress.close()
        assert stream.getvalue() == ""
