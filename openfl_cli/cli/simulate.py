"""`fx simulate`: the whole experiment in one process, without certificates."""

from __future__ import annotations

import sys

import click

from openfl_cli.cli.federation import best_model_text
from openfl_cli.cli.options import cols_option, data_option, plan_option


@click.command("simulate")
@plan_option
@cols_option
@data_option
@click.option(
    "-n",
    "--collaborators",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Simulate N collaborators (collaborator1..N on data shards 1..N); default: those of cols.yaml.",
)
@click.option(
    "-r",
    "--rounds",
    type=click.IntRange(min=1),
    default=None,
    metavar="R",
    help="Rounds to train (default: the plan's).",
)
@click.option(
    "-t",
    "--threads",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    metavar="T",
    help="Collaborators working at the same time (each holds one task runner).",
)
def simulate(
    plan_path: str,
    cols_path: str,
    data_path: str,
    collaborators: int | None,
    rounds: int | None,
    threads: int,
) -> None:
    """Run the workspace's experiment in this process: the real aggregator and collaborators over an
    in-process link, no certificates, no network. Writes the usual snapshots and logs."""
    from openfl_cli.node.simulator import simulate as run
    from openfl_cli.quickstart.report import print_metrics_table

    result = run(plan_path, cols_path, data_path, collaborators=collaborators, rounds=rounds, threads=threads)
    print_metrics_table(result.metrics_file, sys.stdout)  # a rich table on a terminal
    click.echo(
        f"simulated {result.collaborators} collaborators x {result.rounds_done} rounds"
        f" ({result.collaborator_tasks} collaborator tasks) in {result.seconds:.1f} s;"
        f" last model {result.last_state_path}, {best_model_text(result.best_state_path)}"
    )
    if not result.finished:
        sys.exit(1)
