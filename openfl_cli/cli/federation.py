"""`fx aggregator start`, `fx collaborator start`, `fx collaborator ping`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from openfl_cli.cli.options import collaborator_name_option, cols_option, data_option, plan_option


def best_model_text(best: Path | None) -> str:
    """What the end of a run says about `best`: its path only when the file was written."""
    if best is None:
        return "no best model (no round reported the plan's best metric; see the log)"
    return f"best model {best}"


@click.command("start")
@plan_option
@cols_option
def aggregator_start(plan_path: str, cols_path: str) -> None:
    """Serve the federation until the last round is done."""
    from openfl_cli.node.aggregator import start_aggregator

    run = start_aggregator(plan_path, cols_path)
    if not run.finished:
        click.echo(
            f"aggregator stopped after {run.last_round} of {run.rounds_to_train} rounds;"
            " start it again to resume"
        )
        sys.exit(130)
    click.echo(
        f"experiment complete: {run.rounds_to_train} rounds; last model {run.last_state_path},"
        f" {best_model_text(run.best_state_path)}"
    )


@click.command("start")
@collaborator_name_option
@plan_option
@data_option
def collaborator_start(name: str, plan_path: str, data_path: str) -> None:
    """Work through the aggregator's tasks until the experiment is over."""
    from openfl_cli.node.collaborator import start_collaborator

    start_collaborator(name, plan_path, data_path)


@click.command("ping")
@collaborator_name_option
@plan_option
@data_option
def collaborator_ping(name: str, plan_path: str, data_path: str) -> None:
    """Check the connection to the aggregator: reachable, TLS, authorization, plan."""
    from openfl_cli.node.ping import ping_aggregator

    result = ping_aggregator(name, plan_path, data_path)
    click.echo(result.line)
    if not result.ok:
        sys.exit(1)
