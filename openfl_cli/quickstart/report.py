"""The table of metrics per round printed at the end of a quickstart and of `fx simulate`."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import IO

from openfl_cli.federation.metrics.table import NO_ROWS, MetricRows, plain_table, print_table


def metric_rows(metrics_file: Path, node: str = "aggregator") -> dict[int, dict[str, float]]:
    """The aggregated metrics of `logs/metrics.jsonl`, by round (1-based) and "task/metric"."""
    rows: dict[int, dict[str, float]] = defaultdict(dict)
    for line in metrics_file.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("node") != node:
            continue
        # metrics.jsonl counts rounds from 0 (as OpenFL does); people read "round 1/3" in the logs
        rows[int(record["round"]) + 1][f"{record['task']}/{record['metric']}"] = float(record["value"])
    return dict(rows)


def _missing(metrics_file: Path) -> str:
    return f"(no metrics: {metrics_file} was not written)"


def metrics_table(metrics_file: Path, node: str = "aggregator") -> str:
    """Render the aggregated metrics of `logs/metrics.jsonl` as one plain-text row per round."""
    if not metrics_file.is_file():
        return _missing(metrics_file)
    rows: MetricRows = metric_rows(metrics_file, node)
    return plain_table(rows) if rows else NO_ROWS


def print_metrics_table(metrics_file: Path, stream: IO[str]) -> None:
    """The table of `metrics_table`, drawn by rich when `stream` is a terminal."""
    if not metrics_file.is_file():
        print(_missing(metrics_file), file=stream, flush=True)
        return
    print_table(metric_rows(metrics_file), stream, empty=NO_ROWS)
