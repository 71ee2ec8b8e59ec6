"""`fx aggregator start`, `fx collaborator start`, `fx collaborator ping`."""

from __future__ import annotations

import sys

import click

_plan_option = click.option(
    "-p",
    "--plan_config",
    "--plan-config",
    "plan_path",
    default="plan/plan.yaml",
    show_default=True,
    metavar="PATH",
    help="Federated learning plan.",
)
_cols_option = click.option(
    "-c",
    "--cols_config",
    "--cols-config",
    "cols_path",
    default="plan/cols.yaml",
    show_default=True,
    metavar="PATH",
    help="Authorized collaborator list.",
)
_data_option = click.option(
    "-d",
    "--data_config",
    "--data-config",
    "data_path",
    default="plan/data.yaml",
    show_default=True,
    metavar="PATH",
    help="The data set/shard configuration file.",
)
_name_option = click.option(
    "-n",
    "--collaborator_name",
    "--collaborator-name",
    "name",
    required=True,
    metavar="NAME",
    help="The collaborator's name (its certificate's common name).",
)


@click.command("start")
@_plan_option
@_cols_option
def aggregator_start(plan_path: str, cols_path: str) -> None:
    """Serve the federation until the last round is done."""
    from openfl_cli.federation.runtime.aggregator import start_aggregator

    run = start_aggregator(plan_path, cols_path)
    if not run.finished:
        click.echo(
            f"aggregator stopped after {run.last_round} of {run.rounds_to_train} rounds;"
            " start it again to resume"
        )
        sys.exit(130)
    click.echo(
        f"experiment complete: {run.rounds_to_train} rounds; last model {run.last_state_path},"
        f" best model {run.best_state_path}"
    )


@click.command("start")
@_name_option
@_plan_option
@_data_option
def collaborator_start(name: str, plan_path: str, data_path: str) -> None:
    """Work through the aggregator's tasks until the experiment is over."""
    from openfl_cli.federation.runtime.collaborator import start_collaborator

    start_collaborator(name, plan_path, data_path)


@click.command("ping")
@_name_option
@_plan_option
@_data_option
def collaborator_ping(name: str, plan_path: str, data_path: str) -> None:
    """Check the connection to the aggregator: reachable, TLS, authorization, plan."""
    from openfl_cli.federation.runtime.ping import ping_aggregator

    result = ping_aggregator(name, plan_path, data_path)
    click.echo(result.line)
    if not result.ok:
        sys.exit(1)
