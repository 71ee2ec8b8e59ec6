"""The metrics table printed at the end of `fx quickstart`."""

from __future__ import annotations

import json
from pathlib import Path

from openfl_cli.quickstart.report import metrics_table


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
