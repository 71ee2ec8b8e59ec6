"""The `fx` command: a lazy click group.

Command modules are imported only when a command runs (or its help is shown), and they import
heavy libraries only inside the command body, so `fx --help` stays fast.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from typing import Any

import click

from openfl_cli import __version__
from openfl_cli.errors import PATH_ERRORS, FxError
from openfl_cli.utils.logs import LEVELS, setup_logging

# group -> (help, {command -> "module:attribute"})
COMMANDS: dict[str, tuple[str, dict[str, str]]] = {
    "workspace": (
        "Create, export, import and certify workspaces; build and sign their images.",
        {
            "create": "openfl_cli.cli.workspace:create",
            "export": "openfl_cli.cli.workspace:export",
            "import": "openfl_cli.cli.workspace:import_",
            "certify": "openfl_cli.cli.pki:workspace_certify",
            "dockerize": "openfl_cli.cli.workspace:dockerize",
            "sign-image": "openfl_cli.cli.workspace:sign_image",
            "verify-image": "openfl_cli.cli.workspace:verify_image",
        },
    ),
    "plan": (
        "Initialize, print and validate the federated learning plan.",
        {
            "initialize": "openfl_cli.cli.plan:initialize",
            "print": "openfl_cli.cli.plan:print_",
            "validate": "openfl_cli.cli.plan:validate",
        },
    ),
    "model": (
        "Turn model snapshots into framework-native models.",
        {"save": "openfl_cli.cli.model:save"},
    ),
    "aggregator": (
        "Run the aggregator (the model owner) and manage its certificate.",
        {
            "start": "openfl_cli.cli.federation:aggregator_start",
            "generate-cert-request": "openfl_cli.cli.pki:aggregator_generate_cert_request",
            "certify": "openfl_cli.cli.pki:aggregator_certify",
        },
    ),
    "collaborator": (
        "Run a collaborator (a data owner) and manage collaborator certificates.",
        {
            "start": "openfl_cli.cli.federation:collaborator_start",
            "ping": "openfl_cli.cli.federation:collaborator_ping",
            "create": "openfl_cli.cli.pki:collaborator_create",
            "generate-cert-request": "openfl_cli.cli.pki:collaborator_generate_cert_request",
            "certify": "openfl_cli.cli.pki:collaborator_certify",
            "remove": "openfl_cli.cli.pki:collaborator_remove",
        },
    ),
    "director": (
        "Run the Director (the Workflow API's central node) and manage its certificates.",
        {
            "start": "openfl_cli.cli.services:director_start",
            "envoys": "openfl_cli.cli.services:director_envoys",
            "create-ca": "openfl_cli.cli.node_certs:director_create_ca",
            "generate-cert-request": "openfl_cli.cli.node_certs:director_generate_cert_request",
            "certify": "openfl_cli.cli.node_certs:director_certify",
        },
    ),
    "envoy": (
        "Run an Envoy (a data owner's node of the Workflow API) and manage envoy certificates.",
        {
            "start": "openfl_cli.cli.services:envoy_start",
            "accept": "openfl_cli.cli.services:envoy_accept",
            "reject": "openfl_cli.cli.services:envoy_reject",
            "pending": "openfl_cli.cli.services:envoy_pending",
            "generate-cert-request": "openfl_cli.cli.node_certs:envoy_generate_cert_request",
            "certify": "openfl_cli.cli.node_certs:envoy_certify",
        },
    ),
    "experimenter": (
        "Certificates of the data scientists who submit Workflow API experiments.",
        {
            "generate-cert-request": "openfl_cli.cli.node_certs:experimenter_generate_cert_request",
            "certify": "openfl_cli.cli.node_certs:experimenter_certify",
        },
    ),
}
# top-level commands without a group
LEAVES: dict[str, str] = {
    "quickstart": "openfl_cli.cli.quickstart:quickstart",
    "simulate": "openfl_cli.cli.simulate:simulate",
}


def _load(target: str) -> click.Command:
    module_name, attribute = target.split(":")
    return getattr(importlib.import_module(module_name), attribute)


class LazyGroup(click.Group):
    """A group whose commands are named up front and imported on first use."""

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            try:
                return _load(self.lazy[cmd_name])
            except (ImportError, AttributeError) as error:
                # A command whose module is not there yet must not break the others.
                logging.getLogger(__name__).debug("command %s unavailable: %s", cmd_name, error)
                return None
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, lazy=LEAVES, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-l",
    "--log-level",
    type=click.Choice(LEVELS, case_sensitive=False),
    default="info",
    show_default=True,
    help="How much to log; `debug` also shows tracebacks.",
)
@click.version_option(__version__, prog_name="fx")
@click.pass_context
def cli(ctx: click.Context, log_level: str) -> None:
    """fx: plan-driven federated learning.

    Shell completion: eval "$(_FX_COMPLETE=bash_source fx)"
    """
    ctx.ensure_object(dict)
    ctx.obj["log_level"] = log_level.lower()
    setup_logging(log_level.lower())


for _group_name, (_help, _commands) in COMMANDS.items():
    cli.add_command(LazyGroup(name=_group_name, help=_help, lazy=_commands))


def _debug_requested(argv: list[str]) -> bool:
    for index, arg in enumerate(argv):
        if arg in ("-l", "--log-level") and index + 1 < len(argv):
            return argv[index + 1].lower() == "debug"
        if arg.startswith("--log-level="):
            return arg.split("=", 1)[1].lower() == "debug"
    return False


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the click group, turning expected errors into one line and an exit code."""
    # gRPC's C core logs TLS handshakes at INFO to stderr; our own log says what matters
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    args = sys.argv[1:] if argv is None else argv
    try:
        cli.main(args=args, prog_name="fx", standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.exceptions.Abort:
        click.echo("fx: aborted", err=True)
        sys.exit(130)
    except click.exceptions.NoArgsIsHelpError as error:
        # a group called without a command: its help, not an error line
        click.echo(error.format_message(), err=True)
        sys.exit(2)
    except click.ClickException as error:
        # usage errors from click itself: one line, exit 2
        message = error.format_message()
        if isinstance(error, click.UsageError) and error.ctx is not None:
            message = f"{error.ctx.command_path}: {message}"
        click.echo(f"fx: error: {message}", err=True)
        sys.exit(error.exit_code)
    except FxError as error:
        if _debug_requested(args):
            raise
        click.echo(f"fx: error: {error}", err=True)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        click.echo("fx: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:  # `fx plan print | head`: the reader left, nothing to say
        sys.exit(1)
    except OSError as error:
        # a file operation no command turned into its own message: still one line, naming the file
        if _debug_requested(args):
            raise
        click.echo(f"fx: error: {error}", err=True)
        sys.exit(2 if isinstance(error, PATH_ERRORS) else 1)
