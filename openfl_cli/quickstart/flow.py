"""The whole documented flow on one machine: workspace, authority, certificates, federation, model.

Every step is the real `fx` command in its own process, in its own folder, exactly as an operator
would run it on separate machines; only the file transfers between nodes are local copies.
"""

from __future__ import annotations

import logging
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from openfl_cli.errors import UsageError
from openfl_cli.quickstart.live import FederationProgress
from openfl_cli.quickstart.processes import ProcessGroup, fx_step
from openfl_cli.quickstart.report import print_metrics_table

log = logging.getLogger(__name__)

WORKSPACE_NAME = "federation"
NATIVE_SUFFIX = {"torch": ".pt", "keras": ".keras", "tf_2dunet": ".keras", "tf_cnn_histology": ".keras"}


@dataclass(frozen=True)
class QuickstartOptions:
    prefix: Path
    template: str = "torch/mnist"
    collaborators: int = 2
    rounds: int = 3
    fqdn: str = "localhost"
    timeout: float = 1800.0


@dataclass(frozen=True)
class QuickstartResult:
    aggregator_workspace: Path
    collaborator_workspaces: dict[str, Path]
    native_model: Path
    seconds: float


def _native_suffix(template: str) -> str:
    return NATIVE_SUFFIX.get(template.split("/")[0], ".npz")


def _check_options(options: QuickstartOptions) -> None:
    from openfl_cli.workspace.templates import template_path

    template_path(options.template)  # an unknown name is a usage error before anything is created
    if options.collaborators < 1:
        raise UsageError(f"--collaborators: expected a positive number, got {options.collaborators}")
    if options.rounds < 1:
        raise UsageError(f"--rounds: expected a positive number, got {options.rounds}")
    if options.prefix.exists() and any(options.prefix.iterdir()):
        raise UsageError(f"--prefix {options.prefix}: folder exists and is not empty; choose a new one")


LOOPBACK = "127.0.0.1"  # where the quickstart's aggregator listens: reachable from this machine only


def bind_address(fqdn: str) -> str:
    """Where the aggregator listens: 127.0.0.1 when `fqdn` names this machine's loopback (as the
    default "localhost" does), else the first address `fqdn` resolves to (never every interface)."""
    import ipaddress
    import socket

    try:
        found = [str(info[4][0]) for info in socket.getaddrinfo(fqdn, None, type=socket.SOCK_STREAM)]
    except (OSError, UnicodeError):
        return LOOPBACK
    addresses = [ipaddress.ip_address(address.split("%")[0]) for address in found]
    if not addresses or any(address.is_loopback for address in addresses):
        return LOOPBACK
    ipv4 = [address for address in addresses if address.version == 4]
    return str((ipv4 or addresses)[0])


def _set_plan_values(workspace: Path, rounds: int, collaborators: int, bind_addr: str = LOOPBACK) -> None:
    """Write the experiment's size, and where the aggregator listens, into plan.yaml, as a user would
    edit it."""
    import yaml

    from openfl_cli.utils.safe_yaml import load_yaml_text

    plan_file = workspace / "plan" / "plan.yaml"
    plan = load_yaml_text(plan_file.read_text(encoding="utf-8"), str(plan_file)) or {}
    plan.setdefault("aggregator", {}).setdefault("settings", {}).update(
        {"rounds_to_train": rounds, "write_logs": True}
    )
    plan.setdefault("network", {}).setdefault("settings", {})["bind_addr"] = bind_addr
    plan.setdefault("data_loader", {}).setdefault("settings", {})["collaborator_count"] = collaborators
    from openfl_cli.utils.fs import atomic_write_text

    atomic_write_text(plan_file, yaml.safe_dump(plan, sort_keys=False))


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _plan_port(workspace: Path) -> int:
    from openfl_cli.utils.safe_yaml import load_yaml_text

    plan_file = workspace / "plan" / "plan.yaml"
    plan = load_yaml_text(plan_file.read_text(encoding="utf-8"), str(plan_file))
    return int(plan["network"]["settings"]["agg_port"])


def _wait_until_listening(workspace: Path, host: str, group: ProcessGroup, timeout: float = 60.0) -> None:
    """Start collaborators only once the aggregator accepts connections: they would otherwise sleep a
    whole reconnect interval before their second try."""
    import socket

    port = _plan_port(workspace)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        group.check_running()
        with socket.socket() as probe:
            probe.settimeout(0.5)
            if probe.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise UsageError(f"the aggregator did not listen on {host}:{port} within {timeout:.0f} s")


def _step(echo: IO[str], text: str) -> None:
    print(f"==> {text}", file=echo, flush=True)


def _certify_aggregator(workspace: Path, fqdn: str) -> None:
    fx_step(["workspace", "certify"], workspace)
    fx_step(["aggregator", "generate-cert-request", "--fqdn", fqdn], workspace)
    fx_step(["aggregator", "certify", "--fqdn", fqdn, "--silent"], workspace)


def _export(workspace: Path) -> Path:
    fx_step(["workspace", "export"], workspace)
    for candidate in (workspace / f"{workspace.name}.zip", workspace.parent / f"{workspace.name}.zip"):
        if candidate.is_file():
            return candidate
    raise UsageError(f"fx workspace export did not write {workspace.name}.zip")


def _add_collaborator(aggregator: Path, archive: Path, node_root: Path, name: str, shard: int) -> Path:
    """One collaborator node: import the workspace, request a certificate, have it signed, install it."""
    node_root.mkdir(parents=True)
    local_archive = node_root / archive.name
    shutil.copy2(archive, local_archive)  # "copy the archive to the collaborator node"
    fx_step(["workspace", "import", "--archive", str(local_archive)], node_root)
    workspace = node_root / archive.stem
    fx_step(["collaborator", "create", "-n", name, "-d", str(shard), "--silent"], workspace)
    fx_step(["collaborator", "generate-cert-request", "-n", name, "--silent"], workspace)
    request = workspace / f"col_{name}_to_agg_cert_request.zip"
    fx_step(["collaborator", "certify", "--request-pkg", str(request), "--silent"], aggregator)
    signed = aggregator / f"agg_to_col_{name}_signed_cert.zip"
    fx_step(["collaborator", "certify", "--import", str(signed)], workspace)
    return workspace


def inside_git_work_tree(folder: Path) -> bool:
    """Whether `folder` lies in a git work tree (a `.git` folder or file in it or above it)."""
    return any((parent / ".git").exists() for parent in (folder, *folder.parents))


def _make_prefix(prefix: Path) -> None:
    """Create the prefix folder; when this creates it inside a git work tree, have git ignore it (its
    keys, certificates, data and models do not belong in a repository)."""
    created = not prefix.exists()
    prefix.mkdir(parents=True, exist_ok=True)
    if created and inside_git_work_tree(prefix.parent):
        (prefix / ".gitignore").write_text("*\n")


def run_quickstart(options: QuickstartOptions, echo: IO[str] = sys.stdout) -> QuickstartResult:
    _check_options(options)
    started = time.monotonic()
    prefix = options.prefix.resolve()
    aggregator = prefix / "aggregator" / WORKSPACE_NAME
    _make_prefix(prefix)

    _step(echo, f"creating the aggregator's workspace from template {options.template} in {aggregator}")
    fx_step(
        ["workspace", "create", "--prefix", str(aggregator), "--template", options.template], prefix.parent
    )
    bind_addr = bind_address(options.fqdn)
    _set_plan_values(aggregator, options.rounds, options.collaborators, bind_addr)
    _step(echo, "initializing the plan and the model's initial weights")
    fx_step(["plan", "initialize", "-a", options.fqdn], aggregator)
    _step(echo, "setting up the certificate authority and the aggregator's certificate")
    _certify_aggregator(aggregator, options.fqdn)
    archive = _export(aggregator)

    names = [f"collaborator{index}" for index in range(1, options.collaborators + 1)]
    workspaces: dict[str, Path] = {}
    for shard, name in enumerate(names, start=1):
        _step(echo, f"{name}: importing the workspace and certifying it (data shard {shard})")
        workspaces[name] = _add_collaborator(aggregator, archive, prefix / name, name, shard)

    _step(
        echo,
        f"starting the aggregator and {len(names)} collaborators over mutual TLS on {options.fqdn};"
        f" the aggregator listens on {_host_port(bind_addr, _plan_port(aggregator))}"
        + (" (this machine only)" if bind_addr == LOOPBACK else ""),
    )
    live = FederationProgress(echo, options.rounds, names)  # live bars on a terminal
    group = ProcessGroup(echo=live.stream)
    try:
        group.start("aggregator", ["aggregator", "start"], aggregator, aggregator / "logs" / "aggregator.log")
        _wait_until_listening(aggregator, options.fqdn, group)
        for name, workspace in workspaces.items():
            group.start(
                name, ["collaborator", "start", "-n", name], workspace, workspace / "logs" / f"{name}.log"
            )
        group.wait_all(options.timeout)
    finally:
        group.stop_all()
        live.close()

    best = aggregator / "save" / "best.pbuf"
    snapshot = best if best.is_file() else aggregator / "save" / "last.pbuf"
    native = aggregator / "save" / f"model{_native_suffix(options.template)}"
    _step(echo, f"saving {snapshot.name} as a native model")
    fx_step(["model", "save", "-i", str(snapshot), "-o", str(native)], aggregator)
    print_metrics_table(aggregator / "logs" / "metrics.jsonl", echo)
    seconds = time.monotonic() - started
    print(f"\ndone in {seconds:.1f} s: native model {native}", file=echo, flush=True)
    return QuickstartResult(aggregator, workspaces, native, seconds)
