"""The table of metrics per round printed at the end of a quickstart."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path


def metrics_table(metrics_file: Path, node: str = "aggregator") -> str:
    """Render the aggregated metrics of `logs/metrics.jsonl` as one row per round."""
    if not metrics_file.is_file():
        return f"(no metrics: {metrics_file} was not written)"
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
    if not rows:
        return "(no aggregated metrics were recorded)"
    columns = sorted({column for row in rows.values() for column in row})
    header = ["round", *columns]
    lines = [
        header,
        *([str(r), *(f"{rows[r].get(c, float('nan')):.4f}" for c in columns)] for r in sorted(rows)),
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    rendered = [
        "  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True)) for line in lines
    ]
    rendered.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(rendered)
