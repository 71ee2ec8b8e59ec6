"""`fx workspace create | export | import | dockerize | sign-image | verify-image`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click


class _TemplatesEpilog(click.Command):
    """Lists the bundled templates at the end of `--help`, computed only when help is shown."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from openfl_cli.workspace.templates import list_templates

        with formatter.section("Templates"):
            formatter.write_text(", ".join(list_templates()) or "(none installed)")


@click.command("create", cls=_TemplatesEpilog)
@click.option("--prefix", required=True, type=click.Path(path_type=Path), help="Folder of the new workspace.")
@click.option(
    "--template", default="numpy/digits", show_default=True, help="Template to copy (see the list below)."
)
def create(prefix: Path, template: str) -> None:
    """Create a workspace from a bundled template."""
    from openfl_cli.workspace.create import create_workspace

    workspace = create_workspace(prefix, template)
    click.echo(f"Created workspace {workspace} from template {template}")


@click.command("export")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Archive to write [default: <workspace>/<workspace name>.zip].",
)
def export(output: Path | None) -> None:
    """Archive the current workspace (plan, code, requirements; never keys, certificates or snapshots).

    Its requirements.txt pins the packages of this environment (fx itself, editable installs and
    packages installed from a local folder left out) plus what the workspace's own requirements.txt
    asks for beyond them.
    """
    from openfl_cli.workspace.export import export_workspace, shipped_requirements
    from openfl_cli.workspace.layout import require_workspace

    requirements = shipped_requirements(require_workspace("."))
    click.echo(f"requirements.txt: {requirements.summary()}")
    archive = export_workspace(".", output, requirements)
    click.echo(f"Exported workspace to {archive}")


@click.command("import")
@click.option(
    "-a",
    "--archive",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Archive written by `fx workspace export`; unpacked into ./<archive name>/.",
)
@click.option(
    "--install-requirements/--no-install-requirements",
    default=True,
    show_default=True,
    help="Run `pip install -r requirements.txt` of the workspace with this interpreter.",
)
def import_(archive: Path, install_requirements: bool) -> None:
    """Unpack an exported workspace into a new folder of the current directory and install its
    requirements into this environment."""
    from openfl_cli.workspace.import_archive import import_workspace
    from openfl_cli.workspace.requirements import has_requirements, install_command

    workspace = import_workspace(archive, ".", install_requirements=install_requirements, echo=click.echo)
    requirements = workspace / "requirements.txt"
    if not install_requirements and has_requirements(requirements):
        click.echo(
            f"Not installing its requirements; to install them: {' '.join(install_command(requirements))}"
        )
    click.echo(f"Imported workspace into {workspace}")


def _signer_options(command: Callable[..., None]) -> Callable[..., None]:
    """--certificate and --key: the certified key that signs a saved image."""
    certificate = click.option(
        "--certificate",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Certificate to sign with [default: this node's aggregator (or collaborator) certificate].",
    )
    key = click.option(
        "--key",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Key of --certificate [default: the .key beside it].",
    )
    return certificate(key(command))


@click.command("dockerize")
@click.option(
    "--tag", default=None, help="Name of the workspace image [default: the workspace folder's name]."
)
@click.option(
    "--base-image",
    default=None,
    metavar="IMAGE",
    help="Build on this existing base image instead of building one from Dockerfile.base.",
)
@click.option(
    "--context",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the build contexts [default: <workspace>/build/image].",
)
@click.option(
    "--save", is_flag=True, help="Also write <workspace>.tar and its signature <workspace>.tar.sig."
)
@_signer_options
def dockerize(
    tag: str | None,
    base_image: str | None,
    context: Path | None,
    save: bool,
    certificate: Path | None,
    key: Path | None,
) -> None:
    """Build the base image and this workspace's image (plan, code, requirements; never keys,
    certificates, snapshots, logs or local state). Without a Docker engine, write the build contexts
    and print the commands to run elsewhere. Gramine/SGX images are not built."""
    from openfl_cli.workspace.dockerize import dockerize as run_dockerize

    run_dockerize(
        ".",
        tag=tag,
        base_image=base_image,
        context=context,
        save=save,
        certificate=certificate,
        key=key,
        echo=click.echo,
    )


@click.command("sign-image")
@click.argument("tarball", type=click.Path(dir_okay=False, path_type=Path))
@_signer_options
def sign_image(tarball: Path, certificate: Path | None, key: Path | None) -> None:
    """Sign a saved workspace image (`docker save -o X.tar ...`): writes X.tar.sig beside it."""
    from openfl_cli.workspace.image_signature import sign_image as sign

    signature, signed = sign(tarball, ".", certificate=certificate, key=key)
    click.echo(
        f"Signed {tarball} ({signed.size} bytes, SHA-384 {signed.sha384}) as {signed.role} {signed.signer}"
    )
    click.echo(f"Wrote {signature}; send it with the tarball")


@click.command("verify-image")
@click.argument("tarball", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--signature",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The detached signature [default: TARBALL.sig].",
)
@click.option(
    "--chain",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The federation's certificate chain [default: cert/cert_chain.crt of this workspace].",
)
def verify_image(tarball: Path, signature: Path | None, chain: Path | None) -> None:
    """Check a received workspace image against its signature and this federation's authority."""
    from openfl_cli.workspace.image_signature import verify_image as verify

    checked = verify(tarball, ".", signature=signature, chain=chain)
    click.echo(
        f"{tarball}: signature valid; signed by {checked.role} {checked.signer} on {checked.signed_at} "
        f"(certificate SHA-256 {checked.signer_fingerprint[:16]}...), SHA-384 {checked.sha384}"
    )
    click.echo(f"Load it with: docker load -i {tarball}")
