"""`fx model save`."""

from __future__ import annotations

from pathlib import Path

import click

from openfl_cli.cli.options import cols_option, data_option, plan_option

_FILE = click.Path(dir_okay=False, path_type=Path)


@click.command("save")
@click.option("-i", "--input", "snapshot", required=True, type=_FILE, help="Snapshot (.pbuf) to convert.")
@click.option("-o", "--output", required=True, type=_FILE, help="Native model file to write.")
@plan_option
@cols_option
@data_option
def save(snapshot: Path, output: Path, plan_path: str, cols_path: str, data_path: str) -> None:
    """Save a snapshot's model in the task runner's native format (its save_native)."""
    from openfl_cli.workspace.model import save_model

    written = save_model(snapshot, output, plan_path, cols_path, data_path)
    click.echo(f"Saved model to {written}")
