"""What both sides build from an experiment spec: its loading from a plan, network address, callbacks,
the reference runner."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from openfl_cli.errors import SecurityError, UsageError

if TYPE_CHECKING:
    from openfl_cli.data.base import DataLoader
    from openfl_cli.federation.metrics import MetricCallback
    from openfl_cli.federation.specs import ComponentBuilder, ExperimentSpec, NetworkSpec
    from openfl_cli.pki.layout import TlsPaths
    from openfl_cli.plan import Plan
    from openfl_cli.runners.base import TaskRunner


def load_plan(plan_path: str | Path, cols_path: str | Path | None, data_path: str | Path | None) -> Plan:
    from openfl_cli.plan import Plan

    plan = Plan.load(plan_path, cols_path, data_path)
    if not plan.network_settings.resolved:
        raise UsageError(
            f"{plan_path}: network.settings.agg_addr/agg_port are still 'auto':"
            " run `fx plan initialize` first"
        )
    return plan


def checked_data_path(plan: Plan, name: str) -> str:
    """Collaborator `name`'s data path from the data file, checked before anything connects.

    A value written as a path (absolute, or with a folder separator, `.` or `~` in front) must exist and
    be readable here, as the data loader will open it. Anything else (a shard number such as `1`, a site
    name a script runner reads, a data set's name) is the data loader's to interpret.
    """
    data_path = plan.data_path_for(name)
    text = data_path.strip()
    if text and not _written_as_path(text):
        return data_path
    path = Path(text).expanduser()
    if not text:
        problem = "is empty"
    elif not path.exists():
        problem = "does not exist"
    elif not os.access(path, os.R_OK | (os.X_OK if path.is_dir() else 0)):
        problem = "is not readable"
    else:
        return data_path
    where = "" if path.is_absolute() or not text else f" (relative to {Path.cwd()})"
    raise UsageError(
        f"{plan.data_file}: collaborator {name}: data path {text!r} {problem}{where};"
        " expected a folder or file readable on this machine"
    )


def _written_as_path(text: str) -> bool:
    separators = [sep for sep in (os.sep, os.altsep) if sep]
    return text.startswith((".", "~")) or Path(text).is_absolute() or any(sep in text for sep in separators)


def require_tls_files(workspace: Path, name: str, client_auth: bool) -> TlsPaths:
    """The collaborator's TLS files, each checked: a missing or unreadable one is named."""
    from openfl_cli.pki.layout import collaborator_tls_paths

    tls = collaborator_tls_paths(workspace, name)
    needed = (tls.cert_chain, tls.certificate, tls.private_key) if client_auth else (tls.cert_chain,)
    missing = [str(path) for path in needed if not path.is_file() or not os.access(path, os.R_OK)]
    if missing:
        raise SecurityError(
            f"collaborator {name}: missing or unreadable TLS file(s) {', '.join(missing)};"
            f" certify it first (`fx collaborator generate-cert-request -n {name}`, then `certify --import`)"
        )
    return tls


def address_of(network: NetworkSpec) -> tuple[str, int]:
    return str(network.agg_addr), int(network.agg_port)


def metric_callback(builder: ComponentBuilder, dotted: str | None) -> MetricCallback | None:
    """Import a `log_metric_callback` (dotted path; `src.` modules come from the workspace)."""
    if not dotted:
        return None
    return builder.import_callable(dotted, ("log_metric_callback",))


def build_reference_runner(spec: ExperimentSpec, builder: ComponentBuilder) -> TaskRunner:
    """A task runner on the aggregator's side (native model, initial optimizer state). Like
    `fx plan initialize`: the data loader of the first collaborator in data.yaml, else shard "1",
    built only if the runner asks it for something (the aggregator's machine usually holds no data)."""
    from openfl_cli.data.deferred import DeferredDataLoader

    first = next(iter(spec.data_paths.values()), "1")

    def loader() -> DataLoader:
        built: DataLoader = builder.build(spec.data_loader, {"data_path": first})
        return built

    runner: TaskRunner = builder.build(spec.task_runner, {"data_loader": DeferredDataLoader(loader)})
    return runner


def existing(path: str | Path) -> str | None:
    """`path` if the file exists (optional cols/data files), else None."""
    return str(path) if Path(path).is_file() else None
