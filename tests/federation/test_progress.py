"""The aggregator's and collaborator's console output: plain lines off a terminal (scripts read them),
live rich progress and a metrics table on one."""

from __future__ import annotations

import io
import logging
import subprocess
import sys

import pytest
from rich.console import Console

from openfl_cli.federation.progress import ConsoleReporter, RoundSummary, TaskProgress, WaitStatus


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _screen() -> tuple[Terminal, Console]:
    screen = Terminal()
    return screen, Console(file=screen, force_terminal=True, record=True, width=120)


def _summary(number: int, rounds: int = 2, acc: float = 0.5) -> RoundSummary:
    return RoundSummary(number, rounds, 2, 2, {"aggregated_model_validation": {"acc": acc}}, 1.25, True)


def _wait(number: int, done: int, pending: tuple[str, ...]) -> WaitStatus:
    return WaitStatus(number, 2, done, 2, pending, 3.0)


def test_off_a_terminal_the_round_lines_are_plain_and_no_table(caplog: pytest.LogCaptureFixture) -> None:
    out, err = io.StringIO(), io.StringIO()
    reporter = ConsoleReporter(out=out, err=err)
    assert reporter.interval == 5.0
    with caplog.at_level(logging.INFO, "openfl_cli.federation.progress"):
        reporter.waiting(_wait(0, 1, ("site2",)))
    reporter.round_closed(_summary(0))
    reporter.round_closed(_summary(1, acc=0.75))
    assert out.getvalue().splitlines() == [
        "round 1/2: 2/2 collaborators done, aggregated_model_validation acc=0.5, 1.25 s (best so far)",
        "round 2/2: 2/2 collaborators done, aggregated_model_validation acc=0.75, 1.25 s (best so far)",
    ]
    assert err.getvalue() == ""  # no escape codes in a log file
    assert "waiting for site2" in caplog.text


def test_on_a_terminal_a_live_bar_shows_the_round_and_who_is_awaited() -> None:
    out = io.StringIO()
    _, console = _screen()
    reporter = ConsoleReporter(out=out, console=console)
    assert reporter.interval == 1.0
    reporter.waiting(_wait(1, 1, ("site2", "site3")))
    reporter._live.active.refresh()  # type: ignore[union-attr]  # draw now, not at the next tick
    drawn = console.export_text()
    assert "round 2/2" in drawn and "1/2" in drawn and "waiting for site2, site3" in drawn
    reporter.round_closed(_summary(1))
    assert reporter._live.active is None  # type: ignore[union-attr]  # cleared before the round line
    assert out.getvalue().startswith("round 2/2: 2/2 collaborators done")


def test_a_terminal_gets_a_rich_table_after_the_last_round() -> None:
    screen, console = _screen()
    reporter = ConsoleReporter(out=screen, console=console)
    reporter.round_closed(_summary(0, acc=0.5))
    assert "┃" not in screen.getvalue()  # no table before the end
    reporter.round_closed(_summary(1, acc=0.75))
    table = screen.getvalue().split("(best so far)")[-1]
    assert "aggregated metrics" in table and "aggregated_model_validation/acc" in table
    assert "0.5000" in table and "0.7500" in table and "\x1b[" in table  # drawn by rich
    quiet, console = _screen()
    ConsoleReporter(out=quiet, console=console, table=False).round_closed(_summary(1))
    assert "aggregated metrics" not in quiet.getvalue()


def test_task_progress_spins_on_a_terminal_and_logs_elsewhere(caplog: pytest.LogCaptureFixture) -> None:
    _, console = _screen()
    out = io.StringIO()
    progress = TaskProgress(out=out, console=console)
    with progress.task("round 1/2 train"):
        progress._live.active.refresh()  # type: ignore[union-attr]
        assert "round 1/2 train" in console.export_text()
    assert progress._live.active is None  # type: ignore[union-attr]
    progress.line("round 1/2 train: loss=1 (50 samples)")
    assert out.getvalue() == "round 1/2 train: loss=1 (50 samples)\n"

    plain_out, plain_err = io.StringIO(), io.StringIO()
    plain = TaskProgress(out=plain_out, err=plain_err)
    with caplog.at_level(logging.INFO, "openfl_cli.federation.progress"), plain.task("round 1/2 train"):
        pass
    plain.line("done")
    assert "round 1/2 train ..." in caplog.text
    assert plain_out.getvalue() == "done\n" and plain_err.getvalue() == ""


def test_log_lines_print_above_a_live_display() -> None:
    screen, console = _screen()
    handler = logging.StreamHandler(screen)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        reporter = ConsoleReporter(out=io.StringIO(), console=console)
        reporter.waiting(_wait(0, 0, ("site1",)))
        assert handler.stream is not screen  # routed through the console while the bar is up
        logging.getLogger("openfl_cli.test").warning("a warning during the round")
        reporter.round_closed(_summary(0))
        assert handler.stream is screen
    finally:
        root.removeHandler(handler)
    assert "a warning during the round" in console.export_text()


def test_plain_output_never_imports_rich() -> None:
    code = (
        "import io, sys\n"
        "from openfl_cli.federation.progress import ConsoleReporter, RoundSummary, TaskProgress\n"
        "from openfl_cli.node.sim_progress import RoundProgress\n"
        "r = ConsoleReporter(out=io.StringIO(), err=io.StringIO())\n"
        "r.round_closed(RoundSummary(0, 1, 1, 1, {'t': {'m': 1.0}}, 1.0, False))\n"
        "with TaskProgress(out=io.StringIO(), err=io.StringIO()).task('x'): pass\n"
        "p = RoundProgress(stream=io.StringIO()); p.round_started(0, 1, 1); p.collaborator_done()\n"
        "print('rich' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "False"
