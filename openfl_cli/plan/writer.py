"""Specs -> `plan/plan.yaml`, `plan/cols.yaml`, `plan/data.yaml`: how a FedJob or the simulator's
experiment becomes a workspace that `fx` runs. The plan written is fully resolved (no `defaults:`), so
loading it gives back the same specs and, for a spec that came from a plan, the same plan hash."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from openfl_cli.federation.specs import ComponentSpec, ExperimentSpec
from openfl_cli.plan import aliases
from openfl_cli.utils.fs import atomic_write_text

HEADER = "# Written by fx from an experiment spec: every setting resolved, no defaults files.\n"


def plan_config(spec: ExperimentSpec) -> dict[str, Any]:
    """The plan's sections as a mapping, in the layout `Plan.load` resolves a plan to."""
    agg, outputs, network = spec.aggregator, spec.aggregator.outputs, spec.network
    config: dict[str, Any] = {
        "aggregator": {
            "template": aliases.AGGREGATOR,
            "settings": {
                "init_state_path": outputs.init_path,
                "best_state_path": outputs.best_path,
                "last_state_path": outputs.last_path,
                "rounds_to_train": agg.rounds_to_train,
                "db_store_rounds": outputs.db_store_rounds,
                "write_logs": outputs.write_logs,
                "persist_checkpoint": outputs.persist_checkpoint,
                "persistent_db_path": outputs.persistent_db,
                "save_native_model": outputs.save_native_model,
                "native_model_path": outputs.native_model_path,
                "best_metric_task": outputs.best.task,
                "best_metric": outputs.best.metric,
                "best_metric_higher_is_better": outputs.best.higher_is_better,
                "log_metric_callback": outputs.metric_callback,
            },
        },
        "collaborator": {
            "template": aliases.COLLABORATOR,
            "settings": {
                "use_delta_updates": agg.use_delta_updates,
                "opt_treatment": agg.opt_treatment,
                "db_store_rounds": spec.extra.get("collaborator.db_store_rounds", 1),
                "log_metric_callback": spec.collaborator_metric_callback,
            },
        },
        "network": {
            "template": aliases.NETWORK,
            "settings": {
                "agg_addr": network.agg_addr,
                "agg_port": network.agg_port,
                "bind_addr": network.bind_addr,
                "use_tls": network.use_tls,
                "require_client_auth": network.require_client_auth,
                "client_reconnect_interval": network.reconnect_interval,
                "client_reconnect_timeout": network.reconnect_timeout,
                "cert_folder": network.cert_folder,
            },
        },
        "data_loader": _section(spec.data_loader),
        "task_runner": _section(spec.task_runner),
        "assigner": _section(agg.assigner),
    }
    if spec.compression is not None:
        config["compression_pipeline"] = _section(spec.compression)
    if not spec.extra.get("straggler.implicit"):
        config["straggler_handling_policy"] = _section(agg.straggler)
    tasks: dict[str, Any] = {}
    if "tasks.settings" in spec.extra:
        tasks["settings"] = spec.extra["tasks.settings"]
    for name, task in agg.tasks.items():
        entry: dict[str, Any] = {"function": task.function, "kwargs": dict(task.kwargs)}
        if name in agg.aggregation:
            entry["aggregation_type"] = _section(agg.aggregation[name])
        tasks[name] = entry
    config["tasks"] = tasks
    return config


def write_plan(spec: ExperimentSpec, workspace: str | Path) -> Path:
    """Write the plan, cols and data files of `spec` under `workspace/plan/`; return plan.yaml's path.
    Each file is replaced atomically."""
    folder = Path(workspace) / "plan"
    folder.mkdir(parents=True, exist_ok=True)
    plan_path = folder / "plan.yaml"
    atomic_write_text(plan_path, HEADER + _dump(plan_config(spec)))
    atomic_write_text(folder / "cols.yaml", _dump({"collaborators": list(spec.collaborators)}))
    atomic_write_text(folder / "data.yaml", _dump(dict(spec.data_paths)) if spec.data_paths else "{}\n")
    return plan_path


def _section(component: ComponentSpec) -> dict[str, Any]:
    return {"template": component.template, "settings": dict(component.settings)}


def _dump(document: Any) -> str:
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=False, allow_unicode=True)
