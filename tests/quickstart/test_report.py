"""The metrics table printed at the end of `fx quickstart`."""

from __future__ import annotations

import io
import json
from pathlib import Path

from openfl_cli.quickstart.report import metrics_table, print_metrics_table


def _write(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def test_rows_per_round_numbered_like_the_logs(tmp_path: Path) -> None:
    metrics = _write(
        tmp_path / "metrics.jsonl",
        [
            {
                "round": 0,
                "node": "aggregator",
                "task": "aggregated_model_validation",
                "metric": "acc",
                "value": 0.1,
            },
            {
                "round": 1,
                "node": "aggregator",
                "task": "aggregated_model_validation",
                "metric": "acc",
                "value": 0.5,
            },
            {
                "round": 1,
                "node": "site1",
                "task": "aggregated_model_validation",
                "metric": "acc",
                "value": 0.9,
            },
        ],
    )
    lines = metrics_table(metrics).splitlines()
    assert lines[0].split() == ["round", "aggregated_model_validation/acc"]
    assert lines[2].split() == ["1", "0.1000"]
    assert lines[3].split() == ["2", "0.5000"]  # collaborator rows are not aggregated metrics
    assert len(lines) == 4


def test_missing_or_empty_file_is_said(tmp_path: Path) -> None:
    assert "was not written" in metrics_table(tmp_path / "absent.jsonl")
    assert "no aggregated metrics" in metrics_table(_write(tmp_path / "m.jsonl", []))


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_printed_table_is_plain_off_a_terminal_and_rich_on_one(tmp_path: Path) -> None:
    metrics = _write(
        tmp_path / "metrics.jsonl",
        [{"round": 0, "node": "aggregator", "task": "train", "metric": "loss", "value": 0.25}],
    )
    piped = io.StringIO()
    print_metrics_table(metrics, piped)
    assert piped.getvalue() == metrics_table(metrics) + "\n"  # what scripts and tests parse
    screen = Terminal()
    print_metrics_table(metrics, screen)
    drawn = screen.getvalue()
    assert "\x1b[" in drawn and "━" in drawn  # rich's styling and rules
    assert "aggregated metrics" in drawn and "train/loss" in drawn and "0.2500" in drawn
    missing = io.StringIO()
    print_metrics_table(tmp_path / "absent.jsonl", missing)
    assert "was not written" in missing.getvalue()
