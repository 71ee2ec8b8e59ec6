"""`fx plan initialize | print | validate`."""

from __future__ import annotations

import click

from openfl_cli.cli.options import cols_option, data_option, plan_option


@click.command("initialize")
@plan_option
@cols_option
@data_option
@click.option(
    "-a",
    "--aggregator_address",
    "--aggregator-address",
    "agg_addr",
    default=None,
    metavar="ADDRESS",
    help="The aggregator's address as collaborators reach it [default: $FQDN, else this machine's FQDN].",
)
@click.option(
    "--input-weights",
    "--input_weights",
    "input_weights",
    default=None,
    type=click.Path(dir_okay=False),
    help="Start from these weights (a .pbuf snapshot) instead of the model's own initial ones.",
)
@click.option(
    "-i",
    "--input-shape",
    "--input_shape",
    "input_shape",
    default=None,
    metavar="SHAPE",
    help="Shape of one input sample, e.g. [1,28,28]: builds the model without loading any data"
    " (for an aggregator that holds none).",
)
def initialize(
    plan_path: str,
    cols_path: str,
    data_path: str,
    agg_addr: str | None,
    input_weights: str | None,
    input_shape: str | None,
) -> None:
    """Resolve the aggregator's address and port in the plan and write the initial model."""
    from openfl_cli.data.shape_only import parse_shape
    from openfl_cli.plan.initialize import initialize as run

    shape = parse_shape(input_shape) if input_shape is not None else None
    result = run(
        plan_path, cols_path, data_path, agg_addr=agg_addr, input_weights=input_weights, input_shape=shape
    )
    click.echo(f"aggregator address: {result.agg_addr}:{result.agg_port} (written to {plan_path})")
    origin = f" from {result.input_weights}" if result.input_weights else ""
    click.echo(f"initial model{origin}: {result.tensor_count} tensors written to {result.init_state_path}")
    click.echo(f"plan hash: {result.plan_hash}")


@click.command("print")
@plan_option
@cols_option
@data_option
def print_(plan_path: str, cols_path: str, data_path: str) -> None:
    """Print the fully resolved plan (defaults merged, OpenFL names mapped) as YAML."""
    import yaml

    from openfl_cli.plan import Plan

    plan = Plan.load(plan_path, cols_path, data_path)
    click.echo(yaml.safe_dump(plan.config, sort_keys=False, default_flow_style=False), nl=False)


@click.command("validate")
@plan_option
@cols_option
@data_option
def validate(plan_path: str, cols_path: str, data_path: str) -> None:
    """Check every setting and template of the plan; print its hash."""
    from openfl_cli.plan import Plan

    plan = Plan.load(plan_path, cols_path, data_path)
    plan.check_templates()
    click.echo(f"plan OK: {plan.hash}")
