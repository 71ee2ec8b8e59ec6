"""Certificates of the Workflow API's nodes: `fx director create-ca | generate-cert-request | certify`,
`fx envoy generate-cert-request | certify` and `fx experimenter generate-cert-request | certify`.

Each node works in a plain folder (`--folder`, default the current one); see openfl_cli/pki/nodes.py for
the files. The PKI is imported inside the command bodies: `fx --help` must not load cryptography.
"""

from __future__ import annotations

from pathlib import Path

import click

from openfl_cli.cli.options import authority_options, confirm_hash, days_option, fqdn_option, resolved_fqdn

_folder_option = click.option(
    "--folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    show_default=True,
    help="This node's folder (its cert/ folder and packages live there).",
)
_silent_option = click.option("-s", "--silent", is_flag=True, help="Do not ask to confirm the hash.")
_force_option = click.option("--force", is_flag=True, help="Replace an existing key and request.")
_WITHOUT_PROMPT = (
    "give --request-hash HASH (the hash the {kind} printed) to compare it without asking,"
    " or -s/--silent to sign without comparing"
)


def _absolute(folder: Path) -> Path:
    return folder.expanduser().absolute()


# --- the director ---------------------------------------------------------------------------------------


@click.command("create-ca")
@_folder_option
@authority_options
def director_create_ca(folder: Path, force: bool, days: int) -> None:
    """Create the director's certificate authority (run on the director's node)."""
    from openfl_cli.pki.nodes import create_director_authority

    created = create_director_authority(_absolute(folder), force=force, days=days)
    click.echo(f"Created the certificate authority in {created.paths.folder}")
    click.echo(f"Certificate chain: {created.chain_path}")
    click.echo(f"Root CA fingerprint (SHA-256): {created.root_fingerprint}")


@click.command("generate-cert-request")
@_folder_option
@fqdn_option("director")
@_force_option
def director_generate_cert_request(folder: Path, fqdn: str | None, force: bool) -> None:
    """Create the director's key and certificate request."""
    from openfl_cli.pki.nodes import director_request

    created = director_request(_absolute(folder), resolved_fqdn(fqdn), force=force)
    click.echo(f"Wrote {created.request_path} and {created.key_path}")
    click.echo(f"The CSR hash (SHA-384) for {created.request_path.name} is {created.hash}")


@click.command("certify")
@_folder_option
@fqdn_option("director")
@_silent_option
@days_option
def director_certify(folder: Path, fqdn: str | None, silent: bool, days: int) -> None:
    """Sign the director's own certificate request."""
    from openfl_cli.pki.nodes import certify_director

    confirm = confirm_hash(
        silent, "this node", "give -s/--silent to sign without asking, once you have compared the hash"
    )
    signed = certify_director(_absolute(folder), resolved_fqdn(fqdn), days=days, confirm=confirm)
    click.echo(f"Signed the director certificate {signed.certificate}")


# --- envoys and experimenters -----------------------------------------------------------------------


def _generate_cert_request(kind: str) -> click.Command:
    @click.command(
        "generate-cert-request",
        help=f"Create this {kind}'s key, request, and the request package for the director.",
    )
    @_folder_option
    @click.option(
        "-n",
        "--name",
        required=True,
        metavar="NAME",
        help=f"The {kind}'s name (its certificate's common name): letters, digits, '-', '_' and '.'.",
    )
    @_force_option
    def command(folder: Path, name: str, force: bool) -> None:
        from openfl_cli.pki.nodes import node_request

        created = node_request(_absolute(folder), kind, name, force=force)
        click.echo(f"Wrote {created.request_path} and {created.key_path} (keep the key on this node)")
        click.echo(f"The CSR hash (SHA-384) for {created.request_path.name} is {created.hash}")
        click.echo(f"Send {created.package} to the director, and give its operator the hash above")

    return command


def _certify(kind: str) -> click.Command:
    @click.command(
        "certify",
        help=f"Sign an {kind}'s request (on the director), or import the signed certificate (on the {kind}).",
    )
    @_folder_option
    @click.option(
        "-r",
        "--request-pkg",
        "--request_pkg",
        "request_pkg",
        type=click.Path(path_type=Path),
        default=None,
        help=f"On the director: sign this {kind}_NAME_to_director_cert_request.zip.",
    )
    @click.option(
        "-i",
        "--import",
        "import_pkg",
        type=click.Path(path_type=Path),
        default=None,
        help=f"On the {kind}: install this director_to_{kind}_NAME_signed_cert.zip.",
    )
    @click.option(
        "--request-hash", default=None, help=f"The hash the {kind} printed: compare without asking."
    )
    @_silent_option
    @days_option
    def command(
        folder: Path,
        request_pkg: Path | None,
        import_pkg: Path | None,
        request_hash: str | None,
        silent: bool,
        days: int,
    ) -> None:
        from openfl_cli.errors import UsageError

        if (request_pkg is None) == (import_pkg is None):
            raise UsageError(
                f"give exactly one of --request-pkg (on the director) and --import (on the {kind})"
            )
        if import_pkg is not None:
            from openfl_cli.pki.nodes import import_node_certificate

            imported = import_node_certificate(_absolute(folder), import_pkg, kind)
            click.echo(f"Installed {imported.certificate} and {imported.chain}")
            click.echo(f"Trusted root CA fingerprint (SHA-256): {imported.root_fingerprint}")
            return
        from openfl_cli.pki.nodes import certify_node

        assert request_pkg is not None  # exactly one of the two was given
        signed = certify_node(
            _absolute(folder),
            request_pkg,
            kind,
            expected_hash=request_hash,
            confirm=confirm_hash(silent, f"the {kind}'s node", _WITHOUT_PROMPT.format(kind=kind)),
            days=days,
        )
        if silent or request_hash:
            click.echo(f"The CSR hash (SHA-384) is {signed.hash}")
        click.echo(f"Signed the certificate of {kind} {signed.name}")
        click.echo(f"Send {signed.package} back to the {kind}")

    return command


envoy_generate_cert_request = _generate_cert_request("envoy")
envoy_certify = _certify("envoy")
experimenter_generate_cert_request = _generate_cert_request("experimenter")
experimenter_certify = _certify("experimenter")
