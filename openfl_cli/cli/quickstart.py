"""`fx quickstart`: a complete local federation over mutual TLS, in one command."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("quickstart")
@click.option("--template", default="torch/mnist", show_default=True, help="Workspace template to train.")
@click.option("--collaborators", default=2, show_default=True, type=int, help="Number of collaborators.")
@click.option("--rounds", default=3, show_default=True, type=int, help="Rounds to train.")
@click.option(
    "--prefix",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="New folder for the aggregator's and the collaborators' workspaces.",
)
@click.option("--fqdn", default="localhost", show_default=True, help="Name the aggregator is reached at.")
@click.option(
    "--timeout",
    default=1800.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds before giving up.",
)
def quickstart(
    template: str, collaborators: int, rounds: int, prefix: Path, fqdn: str, timeout: float
) -> None:
    """Create, certify and run a whole federation on this machine, each node a separate process.

    Ends with the trained model saved in native form and a table of metrics per round.
    Ctrl-C stops every process it started.
    """
    from openfl_cli.quickstart import QuickstartOptions, run_quickstart
    from openfl_cli.utils.names import check_fqdn

    check_fqdn(fqdn)  # a usage error now, not a failed step once the workspaces exist
    run_quickstart(QuickstartOptions(prefix, template, collaborators, rounds, fqdn, timeout))
