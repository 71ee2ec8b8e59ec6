"""`fx model save`."""

from __future__ import annotations

from pathlib import Path

import click

_FILE = click.Path(dir_okay=False, path_type=Path)


@click.command("save")
@click.option("-i", "--input", "snapshot", required=True, type=_FILE, help="Snapshot (.pbuf) to convert.")
@click.option("-o", "--output", required=True, type=_FILE, help="Native model file to write.")
@click.option("-p", "--plan-config", "--plan_config", default="plan/plan.yaml", show_default=True, type=_FILE)
@click.option("-c", "--cols-config", "--cols_config", default="plan/cols.yaml", show_default=True, type=_FILE)
@click.option("-d", "--data-config", "--data_config", default="plan/data.yaml", show_default=True, type=_FILE)
def save(snapshot: Path, output: Path, plan_config: Path, cols_config: Path, data_config: Path) -> None:
    """Save a snapshot's model in the task runner's native format (its save_native)."""
    from openfl_cli.workspace.model import save_model

    written = save_model(snapshot, output, plan_config, cols_config, data_config)
    click.echo(f"Saved model to {written}")
