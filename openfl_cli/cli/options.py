"""Options that several commands share, spelled once (with OpenFL's underscore spellings too)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:  # never imported at run time: `fx --help` must not load the PKI
    from openfl_cli.pki.signing import Confirm

F = TypeVar("F", bound=Callable[..., Any])

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


# -- certificates ----------------------------------------------------------------------------------------


def authority_options(command: F) -> F:
    """`--force` and `--days` of the commands that create a certificate authority."""
    command = click.option(
        "--days",
        type=click.IntRange(1, 36500),
        default=3650,
        show_default=True,
        help="Validity of the authority's certificates.",
    )(command)
    return click.option(
        "--force", is_flag=True, help="Replace an existing authority (its certificates stop being trusted)."
    )(command)


days_option = click.option(
    "--days",
    type=click.IntRange(1, 36500),
    default=365,
    show_default=True,
    help="Validity of the certificate.",
)


def fqdn_option(who: str) -> Callable[[F], F]:
    return click.option(
        "--fqdn",
        default=None,
        help=f"The {who}'s FQDN or IP address [default: $FQDN, else this machine's FQDN].",
    )


def resolved_fqdn(fqdn: str | None) -> str:
    """`fqdn`, or this machine's, checked."""
    from openfl_cli.utils.names import check_fqdn, machine_fqdn

    return check_fqdn(fqdn or machine_fqdn())


def confirm_hash(silent: bool, who: str, without_prompt: str) -> Confirm | None:
    """Unless `silent`: show a request's hash and ask whether it matches the one printed on `who`.

    `without_prompt` says how to answer when no input can come (the options that skip the question).
    """
    if silent:
        return None

    def ask(digest: str) -> bool:
        from openfl_cli.cli.prompts import confirm

        click.echo(f"The request's hash (SHA-384) is {digest}")
        return confirm(f"Does it match the hash printed on {who}?", without_prompt=without_prompt)

    return ask
