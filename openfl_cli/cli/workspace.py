"""`fx workspace create | export | import`."""

from __future__ import annotations

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
    """Archive the current workspace (plan, code, requirements; never keys, certificates or snapshots)."""
    from openfl_cli.workspace.export import export_workspace

    archive = export_workspace(".", output)
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
    default=False,
    show_default=True,
    help="Run `pip install -r requirements.txt` of the workspace into this environment.",
)
def import_(archive: Path, install_requirements: bool) -> None:
    """Unpack an exported workspace into a new folder of the current directory."""
    from openfl_cli.workspace.import_archive import import_workspace

    workspace = import_workspace(archive, ".", install_requirements=install_requirements)
    click.echo(f"Imported workspace into {workspace}")
    requirements = workspace / "requirements.txt"
    if not install_requirements and requirements.stat().st_size:
        click.echo(f"To install its requirements: pip install -r {requirements} (or --install-requirements)")
