"""`fx workspace certify`, `fx aggregator generate-cert-request | certify`,
`fx collaborator create | generate-cert-request | certify | remove`."""

from __future__ import annotations

from pathlib import Path

import click

from openfl_cli.cli.options import (
    authority_options,
    collaborator_name_option,
    confirm_hash,
    days_option,
    fqdn_option,
    resolved_fqdn,
)

_silent_option = click.option("-s", "--silent", is_flag=True, help="Do not ask for confirmation.")


def _workspace() -> Path:
    from openfl_cli.pki.layout import require_workspace

    return require_workspace(".")


@click.command("certify")
@authority_options
def workspace_certify(force: bool, days: int) -> None:
    """Create the federation's certificate authority (run on the aggregator node)."""
    from openfl_cli.pki.ca import create_authority

    created = create_authority(_workspace(), force=force, days=days)
    click.echo(f"Created the certificate authority in {created.paths.folder}")
    click.echo(f"Certificate chain: {created.chain_path}")
    click.echo(f"Root CA fingerprint (SHA-256): {created.root_fingerprint}")


@click.command("generate-cert-request")
@fqdn_option("aggregator")
@click.option("--force", is_flag=True, help="Replace an existing key and request.")
def aggregator_generate_cert_request(fqdn: str | None, force: bool) -> None:
    """Create the aggregator's key and certificate signing request."""
    from openfl_cli.pki.requests import aggregator_request

    created = aggregator_request(_workspace(), resolved_fqdn(fqdn), force=force)
    click.echo(f"Wrote {created.request_path} and {created.key_path}")
    click.echo(f"The CSR hash (SHA-384) for {created.request_path.name} is {created.hash}")


@click.command("certify")
@fqdn_option("aggregator")
@_silent_option
@days_option
def aggregator_certify(fqdn: str | None, silent: bool, days: int) -> None:
    """Sign the aggregator's certificate request with the federation's authority."""
    from openfl_cli.pki.signing import certify_aggregator

    confirm = confirm_hash(
        silent,
        "this node",
        "give -s/--silent to sign without asking, once you have compared the hash with the one"
        " `fx aggregator generate-cert-request` printed",
    )
    signed = certify_aggregator(_workspace(), resolved_fqdn(fqdn), days=days, confirm=confirm)
    click.echo(f"Signed the aggregator certificate {signed.certificate}")


@click.command("create")
@collaborator_name_option
@click.option("-d", "--data_path", "--data-path", "data", default=None, help="This collaborator's data path.")
@_silent_option
def collaborator_create(name: str, data: str | None, silent: bool) -> None:
    """Record this collaborator's data path in plan/data.yaml."""
    from openfl_cli.errors import UsageError
    from openfl_cli.pki.roster import set_data_path
    from openfl_cli.utils.names import check_collaborator_name

    workspace = _workspace()
    check_collaborator_name(name)
    if data is None:
        if silent:
            raise UsageError("no data path: give it with -d/--data_path")
        from openfl_cli.cli.prompts import prompt_text

        data = prompt_text(f"Data path of collaborator {name}", without_prompt="give it with -d/--data_path")
    path = set_data_path(workspace, name, data)
    click.echo(f"Recorded the data path of {name} in {path}")


@click.command("generate-cert-request")
@collaborator_name_option
@_silent_option
@click.option("--force", is_flag=True, help="Replace an existing key and request.")
def collaborator_generate_cert_request(name: str, silent: bool, force: bool) -> None:
    """Create this collaborator's key, request, and the request package for the aggregator."""
    from openfl_cli.pki.requests import collaborator_request

    created = collaborator_request(_workspace(), name, force=force)
    click.echo(f"The CSR hash (SHA-384) for {created.request_path.name} is {created.hash}")
    if not silent:
        click.echo(f"Wrote {created.request_path} and {created.key_path} (keep the key on this node)")
        click.echo(f"Send {created.package} to the aggregator, and give its operator the hash above")


@click.command("certify")
@click.option(
    "-r",
    "--request-pkg",
    "--request_pkg",
    "request_pkg",
    type=click.Path(path_type=Path),
    default=None,
    help="On the aggregator: sign this col_NAME_to_agg_cert_request.zip.",
)
@click.option(
    "-i",
    "--import",
    "import_pkg",
    type=click.Path(path_type=Path),
    default=None,
    help="On the collaborator: install this agg_to_col_NAME_signed_cert.zip.",
)
@click.option(
    "--request-hash", default=None, help="The hash the collaborator printed: compare without asking."
)
@_silent_option
@days_option
def collaborator_certify(
    request_pkg: Path | None, import_pkg: Path | None, request_hash: str | None, silent: bool, days: int
) -> None:
    """Sign a collaborator's request (aggregator), or import the signed certificate (collaborator)."""
    from openfl_cli.errors import UsageError

    if (request_pkg is None) == (import_pkg is None):
        raise UsageError(
            "give exactly one of --request-pkg (on the aggregator) and --import (on a collaborator)"
        )
    if import_pkg is not None:
        from openfl_cli.pki.signing import import_certificate

        imported = import_certificate(_workspace(), import_pkg)
        click.echo(f"Installed {imported.certificate} and {imported.chain}")
        click.echo(f"Trusted root CA fingerprint (SHA-256): {imported.root_fingerprint}")
        return
    from openfl_cli.pki.signing import certify_collaborator

    assert request_pkg is not None  # exactly one of the two was given
    confirm = confirm_hash(
        silent,
        "the collaborator's node",
        "give --request-hash HASH (the hash the collaborator printed) to compare it without asking,"
        " or -s/--silent to sign without comparing",
    )
    signed = certify_collaborator(
        _workspace(), request_pkg, days=days, expected_hash=request_hash, confirm=confirm
    )
    if silent or request_hash:
        click.echo(f"The CSR hash (SHA-384) is {signed.hash}")
    click.echo(
        f"Signed the certificate of collaborator {signed.name}"
        + (" and added it to plan/cols.yaml" if signed.added_to_cols else "")
    )
    click.echo(f"Send {signed.package} back to the collaborator")


@click.command("remove")
@collaborator_name_option
def collaborator_remove(name: str) -> None:
    """Remove a collaborator from plan/cols.yaml and revoke its certificates."""
    from openfl_cli.pki.revocation import remove

    removed = remove(_workspace(), name)
    click.echo(
        f"Removed {name}: {'taken out of' if removed.removed_from_cols else 'was not in'} plan/cols.yaml, "
        f"{len(removed.revoked)} certificate(s) revoked"
    )
