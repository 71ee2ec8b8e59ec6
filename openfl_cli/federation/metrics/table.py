"""The table of aggregated metrics per round shown at the end of an experiment: a rich table on a
terminal, aligned plain text elsewhere (which scripts and tests read)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, TYPE_CHECKING

from openfl_cli.utils.console import is_terminal, terminal_console

if TYPE_CHECKING:
    from rich.table import Table

# round as people read it (1-based) -> "task/metric" -> value
MetricRows = Mapping[int, Mapping[str, float]]

TITLE = "aggregated metrics"
NO_ROWS = "(no aggregated metrics were recorded)"


def _columns(rows: MetricRows) -> list[str]:
    return sorted({column for row in rows.values() for column in row})


def _cells(rows: MetricRows, columns: list[str]) -> list[list[str]]:
    return [[str(r), *(f"{rows[r].get(c, float('nan')):.4f}" for c in columns)] for r in sorted(rows)]


def plain_table(rows: MetricRows) -> str:
    """Right-aligned columns under a header and a dashed rule, one line per round."""
    columns = _columns(rows)
    lines = [["round", *columns], *_cells(rows, columns)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    rendered = [
        "  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True)) for line in lines
    ]
    rendered.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(rendered)


def rich_table(rows: MetricRows) -> Table:
    from rich.table import Table

    columns = _columns(rows)
    table = Table(title=TITLE, title_justify="left")
    table.add_column("round", justify="right", style="bold")
    for column in columns:
        table.add_column(column, justify="right")
    for cells in _cells(rows, columns):
        table.add_row(*cells)
    return table


def print_table(rows: MetricRows, stream: IO[str], empty: str = NO_ROWS) -> None:
    """`rows` as a table on `stream` (rich on a terminal), or the `empty` line when there are none."""
    if not rows:
        print(empty, file=stream, flush=True)
    elif is_terminal(stream):
        terminal_console(stream).print(rich_table(rows))
    else:
        print(plain_table(rows), file=stream, flush=True)
