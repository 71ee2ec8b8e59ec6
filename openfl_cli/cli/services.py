"""`fx director start | envoys`, `fx envoy start | accept | reject | pending`: the Workflow API's services.

Option names follow the seed: -c / -ec (configs), -dh / -dp (the director's address), -rc (the root
certificate: the federation's chain), -pk (this node's private key), -oc (this node's certificate).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

_path = click.Path(path_type=Path)
DISABLE_TLS_WARNING = (
    "WARNING: --disable-tls: no encryption and no authentication. Anyone who reaches the port can read"
    " the models and data summaries that cross it, submit experiments, and claim to be any envoy."
)


def _tls_options(command: Any) -> Any:
    for option in reversed(
        [
            click.option(
                "-rc", "--root-cert-path", "root_cert", type=_path, help="The federation's certificate chain."
            ),
            click.option(
                "-pk", "--private-key-path", "private_key", type=_path, help="This node's private key."
            ),
            click.option(
                "-oc", "--public-cert-path", "certificate", type=_path, help="This node's certificate."
            ),
            click.option(
                "--disable-tls", is_flag=True, help="Serve / connect without TLS (local tests only)."
            ),
        ]
    ):
        command = option(command)
    return command


def _tls(
    root_cert: Path | None, private_key: Path | None, certificate: Path | None, disable_tls: bool
) -> Any:
    from openfl_cli.errors import UsageError

    given = [p for p in (root_cert, private_key, certificate) if p is not None]
    if disable_tls:
        if given:
            raise UsageError("--disable-tls takes no certificate options (-rc, -pk, -oc)")
        click.echo(DISABLE_TLS_WARNING, err=True)
        return None
    if len(given) != 3:
        raise UsageError("give -rc ROOT_CERT, -pk PRIVATE_KEY and -oc CERTIFICATE, or --disable-tls")
    from openfl_cli.pki.credentials import read_tls_material
    from openfl_cli.pki.layout import TlsPaths

    assert root_cert is not None and certificate is not None and private_key is not None
    return read_tls_material(
        TlsPaths(root_cert, certificate, private_key), "fx director|envoy|experimenter certify"
    )


@click.command("start")
@click.option(
    "-c", "--director-config-path", "config", type=_path, required=True, help="director_config.yaml."
)
@_tls_options
def director_start(
    config: Path,
    root_cert: Path | None,
    private_key: Path | None,
    certificate: Path | None,
    disable_tls: bool,
) -> None:
    """Start the Director and serve until stopped (Ctrl-C or SIGTERM)."""
    from openfl_cli.director.serve import serve_director

    serve_director(config, _tls(root_cert, private_key, certificate, disable_tls))


_director_address = [
    click.option(
        "-dh", "--director-host", "host", required=True, help="The director's host name or address."
    ),
    click.option("-dp", "--director-port", "port", type=click.IntRange(1, 65535), required=True),
]


@click.command("envoys")
@_director_address[0]
@_director_address[1]
@click.option("-n", "--user", default=None, help="Without TLS: the name to ask as.")
@_tls_options
def director_envoys(
    host: str,
    port: int,
    user: str | None,
    root_cert: Path | None,
    private_key: Path | None,
    certificate: Path | None,
    disable_tls: bool,
) -> None:
    """List the envoys a running director knows, and whether each is online (asks as an experimenter)."""
    import time

    from openfl_cli.workflow.federated_runtime import FederatedRuntime

    director = {"director_node_fqdn": host, "director_port": port}
    if not disable_tls:
        director |= {"cert_chain": root_cert, "api_cert": certificate, "api_private_key": private_key}
    else:
        _tls(root_cert, private_key, certificate, disable_tls)
    runtime = FederatedRuntime(director=director, tls=not disable_tls, user=user)
    envoys = runtime.get_envoys()
    if not envoys:
        click.echo("no envoy has reported to the director yet")
    for envoy in envoys:
        state = "online " if envoy.online else "offline"
        ago = (
            f"last report {time.time() - envoy.last_seen:.0f} s ago" if envoy.last_seen else "never reported"
        )
        running = f", running {envoy.experiment}" if envoy.experiment else ""
        click.echo(f"{envoy.name:<24} {state}  {ago}{running}")


@click.command("start")
@click.option("-n", "--envoy-name", "name", required=True, help="This envoy's name (its certificate's).")
@click.option("-ec", "--envoy-config-path", "config", type=_path, required=True, help="envoy_config.yaml.")
@_director_address[0]
@_director_address[1]
@_tls_options
def envoy_start(
    name: str,
    config: Path,
    host: str,
    port: int,
    root_cert: Path | None,
    private_key: Path | None,
    certificate: Path | None,
    disable_tls: bool,
) -> None:
    """Start an Envoy: report to the director and run the experiments its policy (or admin) accepts."""
    from openfl_cli.envoy.serve import serve_envoy

    serve_envoy(name, config, host, port, _tls(root_cert, private_key, certificate, disable_tls))


_folder = click.option(
    "--folder", type=_path, default=Path("."), show_default=True, help="The folder the envoy runs in."
)
_envoy_name = click.option(
    "-n", "--envoy-name", "name", default=None, help="The envoy (if several run there)."
)


@click.command("accept")
@click.argument("experiment_hash")
@_envoy_name
@_folder
def envoy_accept(experiment_hash: str, name: str | None, folder: Path) -> None:
    """Let the experiment with this hash (or its first 8+ hex digits) run on this envoy's data."""
    _decide(folder, name, experiment_hash, True, "")


@click.command("reject")
@click.argument("experiment_hash")
@click.option("--reason", default="", help="Why: the experimenter sees it.")
@_envoy_name
@_folder
def envoy_reject(experiment_hash: str, reason: str, name: str | None, folder: Path) -> None:
    """Refuse the experiment with this hash: nothing of it runs here, and its experimenter is told why."""
    _decide(folder, name, experiment_hash, False, reason or "rejected by the envoy's admin")


@click.command("pending")
@_envoy_name
@_folder
def envoy_pending(name: str | None, folder: Path) -> None:
    """The experiments waiting for this envoy's review: hash, files, requirements."""
    from openfl_cli.envoy.reviews import ask_envoy

    pending = ask_envoy(folder.absolute(), name, {"op": "pending"})["pending"]
    if not pending:
        click.echo("no experiment awaits review")
    for item in pending:
        click.echo(f"{item['hash']}  {item['experiment']} from {item['submitted_by']}")
        click.echo(f"  files: {', '.join(item['files'])} (in {item['folder']})")
        missing = (
            f"; missing here: {', '.join(item['missing_requirements'])}"
            if item["missing_requirements"]
            else ""
        )
        click.echo(f"  requirements: {', '.join(item['requirements']) or 'none'}{missing}")


def _decide(folder: Path, name: str | None, experiment_hash: str, accept: bool, reason: str) -> None:
    from openfl_cli.envoy.reviews import ask_envoy

    request = {"op": "decide", "hash": experiment_hash.strip().lower(), "accept": accept, "reason": reason}
    decided = ask_envoy(folder.absolute(), name, request)["decided"]
    verb = "Accepted" if accept else "Rejected"
    click.echo(f"{verb} experiment {decided['experiment']} (hash {decided['hash']})")
