"""Options that several commands share, spelled once (with OpenFL's underscore spellings too)."""

from __future__ import annotations

import click

plan_option = click.option(
    "-p",
    "--plan_config",
    "--plan-config",
    "plan_path",
    default="plan/plan.yaml",
    show_default=True,
    metavar="PATH",
    help="Federated learning plan.",
)
cols_option = click.option(
    "-c",
    "--cols_config",
    "--cols-config",
    "cols_path",
    default="plan/cols.yaml",
    show_default=True,
    metavar="PATH",
    help="Authorized collaborator list.",
)
data_option = click.option(
    "-d",
    "--data_config",
    "--data-config",
    "data_path",
    default="plan/data.yaml",
    show_default=True,
    metavar="PATH",
    help="Data path of each collaborator.",
)
collaborator_name_option = click.option(
    "-n",
    "--collaborator_name",
    "--collaborator-name",
    "name",
    required=True,
    metavar="NAME",
    help="The collaborator's name (its certificate's common name): letters, digits, '-', '_' and '.'.",
)
