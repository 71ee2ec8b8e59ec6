"""What both sides build from a plan: its loading, its network settings, callbacks, a runner."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from openfl_cli.errors import PlanError, UsageError
from openfl_cli.transport.messages import TaskSpec

if TYPE_CHECKING:
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


def address_of(plan: Plan) -> tuple[str, int]:
    network = plan.network_settings
    return str(network.agg_addr), int(network.agg_port)


def wire_task(plan: Plan, name: str) -> TaskSpec:
    """The plan's task as it travels to collaborators."""
    try:
        spec = plan.tasks[name]
    except KeyError:
        raise PlanError(
            str(plan.plan_path), f"tasks.{name}", "the assigner names a task the plan lacks"
        ) from None
    return TaskSpec(name=spec.name, function=spec.function, kwargs=dict(spec.kwargs))


def metric_callback(plan: Plan, dotted: str | None) -> Any:
    """Import a `log_metric_callback` (dotted path; `src.` modules come from the workspace)."""
    if not dotted:
        return None
    from openfl_cli.plan.templates import TemplateError, import_object

    try:
        callback = import_object(dotted, plan.workspace)
    except TemplateError as error:
        raise PlanError(str(plan.plan_path), "log_metric_callback", str(error)) from None
    if not callable(callback):
        raise PlanError(str(plan.plan_path), "log_metric_callback", f"{dotted} is not callable")
    return callback


def build_reference_runner(plan: Plan) -> TaskRunner:
    """A task runner on the aggregator's side (native model, initial optimizer state). Like
    `fx plan initialize`: the data loader of the first collaborator in data.yaml, else shard "1"."""
    first = next(iter(plan.data_paths), None)
    loader = plan.build_data_loader(first) if first else plan.build_data_loader("", data_path="1")
    return plan.build_task_runner(loader)


def existing(path: str | Path) -> str | None:
    """`path` if the file exists (optional cols/data files), else None."""
    return str(path) if Path(path).is_file() else None
