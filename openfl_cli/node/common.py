"""What both sides build from an experiment spec: its loading from a plan, network address, callbacks,
the reference runner."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from openfl_cli.errors import UsageError

if TYPE_CHECKING:
    from openfl_cli.data.base import DataLoader
    from openfl_cli.federation.metrics import MetricCallback
    from openfl_cli.federation.specs import ComponentBuilder, ExperimentSpec, NetworkSpec
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


def address_of(network: NetworkSpec) -> tuple[str, int]:
    return str(network.agg_addr), int(network.agg_port)


def metric_callback(builder: ComponentBuilder, dotted: str | None) -> MetricCallback | None:
    """Import a `log_metric_callback` (dotted path; `src.` modules come from the workspace)."""
    if not dotted:
        return None
    return builder.import_callable(dotted, ("log_metric_callback",))


def build_reference_runner(spec: ExperimentSpec, builder: ComponentBuilder) -> TaskRunner:
    """A task runner on the aggregator's side (native model, initial optimizer state). Like
    `fx plan initialize`: the data loader of the first collaborator in data.yaml, else shard "1"."""
    first = next(iter(spec.data_paths.values()), "1")
    loader: DataLoader = builder.build(spec.data_loader, {"data_path": first})
    runner: TaskRunner = builder.build(spec.task_runner, {"data_loader": loader})
    return runner


def existing(path: str | Path) -> str | None:
    """`path` if the file exists (optional cols/data files), else None."""
    return str(path) if Path(path).is_file() else None
