"""The quickstart's live view of the relayed participant lines."""

from __future__ import annotations

import io

from rich.console import Console

from openfl_cli.quickstart.live import FederationProgress

LINES = [
    "aggregator   | 16:00:00.000 INFO    openfl_cli.node.aggregator: serving on 127.0.0.1:5000",
    "site1        | round 1/3 train: loss=0.5 (50 samples), sent 0.10 MB",
    "site1        | round 1/3 aggregated_model_validation: acc=0.25 (50 samples)",
    "aggregator   | round 1/3: 2/2 collaborators done, aggregated_model_validation acc=0.25, 0.20 s",
    "aggregator   | round 2/3: 2/2 collaborators done, aggregated_model_validation acc=0.5, 0.20 s",
]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _relay(stream) -> None:
    for line in LINES:  # as the relay prints: the text, then its newline
        print(line, file=stream, flush=True)


def test_off_a_terminal_the_lines_pass_through_untouched() -> None:
    echo = io.StringIO()
    live = FederationProgress(echo, 3, ["site1", "site2"])
    assert live.stream is echo
    _relay(live.stream)
    live.close()
    assert echo.getvalue() == "".join(line + "\n" for line in LINES)


def test_on_a_terminal_bars_follow_the_rounds_and_each_collaborators_tasks() -> None:
    console = Console(file=Terminal(), force_terminal=True, record=True, width=160)
    live = FederationProgress(Terminal(), 3, ["site1", "site2"], console=console)
    _relay(live.stream)
    live._live.active.refresh()  # type: ignore[union-attr]  # draw now, not at the next tick
    screen = console.export_text()
    assert all(line in screen for line in LINES)  # the lines still show, above the bars
    assert "rounds" in screen and "2/3" in screen
    assert "2 tasks" in screen and "last: round 1/3 aggregated_model_validation" in screen
    assert "site2" in screen and "0 tasks" in screen
    live.close()
    assert live._live.active is None  # type: ignore[union-attr]
