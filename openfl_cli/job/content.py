"""What an export writes, decided and checked before any file is touched: the experiment spec (the
plan), the files under `src/`, the initial model, the requirements and meta.json.

The plan's task runner is the client runner (`openfl_cli.client.runner.ScriptTaskRunner`); what all
clients run is in its settings, and what a site was sent on its own overrides them under
`sites: {site: {...}}` (a site's filters and components there are complete lists, the common ones
included; a site's own script or executor comes with the other one set to null).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openfl_cli.errors import UsageError
from openfl_cli.federation.specs import (
    AggregatorSpec,
    BestModelSpec,
    ComponentSpec,
    ExperimentSpec,
    NetworkSpec,
    OutputsSpec,
)
from openfl_cli.job.apps import ALL_SITES, SERVER, App
from openfl_cli.job.filters import FilterType
from openfl_cli.job.selectors import IntimeModelSelector
from openfl_cli.plan import aliases
from openfl_cli.transport.messages import TaskSpec

if TYPE_CHECKING:
    import numpy as np

    from openfl_cli.job.job import FedJob

log = logging.getLogger(__name__)

DATA_LOADER = "openfl_cli.client.runner.ScriptDataLoader"
TASK_RUNNER = "openfl_cli.client.runner.ScriptTaskRunner"
INIT_PATH = "save/init.pbuf"
_NOT_SHIPPED = ("__pycache__",)


@dataclass(frozen=True)
class ExportContent:
    """Everything an export writes, decided (and checked) before any file is touched."""

    spec: ExperimentSpec
    files: dict[str, Path]  # src/... -> source file
    initial_model: dict[str, np.ndarray]
    requirements: list[str]
    meta: dict[str, Any]


def export_content(job: FedJob, workspace: Path, n_clients: int | None = None) -> ExportContent:
    """What exporting `job` as `workspace` writes; UsageError for a job that cannot run."""
    if n_clients is not None and (
        isinstance(n_clients, bool) or not isinstance(n_clients, int) or n_clients < 1
    ):
        raise UsageError(f"n_clients: expected an integer >= 1, got {n_clients!r}")
    apps = job.apps
    server = apps.get(SERVER) or App(SERVER)
    sites = job.client_sites(n_clients)
    _check_runnable(job, server, sites)
    spec = experiment_spec(job, workspace, sites)
    files, app_files = _source_files(apps)
    meta: dict[str, Any] = {
        "name": job.name,
        "min_clients": job.min_clients,
        "mandatory_clients": list(job.mandatory_clients),
        "deploy_map": _deploy_map(apps, sites),
        "app_files": app_files,
        "sites": list(sites),
        "resource_spec": {},
        "exported_by": "openfl_cli.job",
    }
    others = {
        key: entry.entry()
        for key, entry in server.components.items()
        if not isinstance(entry.obj, IntimeModelSelector)
    }
    if others:
        log.warning(
            "job %s: the aggregator builds no server components; %s recorded in meta.json only",
            job.name,
            ", ".join(others),
        )
        meta["server_components"] = others
    requirements = [str(line).strip() for line in job.requirements if str(line).strip()]
    assert server.initial_model is not None  # checked above
    return ExportContent(spec, files, dict(server.initial_model), requirements, meta)


def _check_runnable(job: FedJob, server: App, sites: list[str]) -> None:
    """Refuse a job that could never run, before anything is written."""
    if server.controller is None:
        raise UsageError(
            f"job {job.name}: no controller; send one to the server, e.g. FedAvg(num_clients, num_rounds)"
        )
    if server.initial_model is None:
        raise UsageError(
            f"job {job.name}: no initial model; send PTModel(net) or TFModel(model) to the server"
        )
    if not sites:
        raise UsageError(
            f"job {job.name}: no clients; send objects to sites with to(obj, 'site-1'), or give n_clients"
        )
    missing = [site for site in job.mandatory_clients if site not in sites]
    if missing:
        raise UsageError(
            f"job {job.name}: mandatory client(s) {', '.join(missing)} are not clients of the job"
            f" ({', '.join(sites)}); the job could never run"
        )
    if len(sites) < job.min_clients:
        raise UsageError(
            f"job {job.name}: min_clients is {job.min_clients} but the job has {len(sites)} clients"
        )
    common = job.apps.get(ALL_SITES)
    for site in sites:
        own = job.apps.get(site)
        if (own is None or own.handler is None) and (common is None or common.handler is None):
            raise UsageError(
                f"job {job.name}: {site} has nothing to run for its tasks; send it a ScriptRunner or an"
                " Executor (to_clients() for every client)"
            )


def experiment_spec(job: FedJob, workspace: Path, sites: list[str]) -> ExperimentSpec:
    """The job as the typed specs a plan loads into: one `train` task for every site, the controller's
    rounds and straggler policy, the client runner with the job's scripts, filters and components."""
    apps = job.apps
    server = apps.get(SERVER) or App(SERVER)
    if server.controller is None:
        raise UsageError(f"job {job.name}: no controller")
    workflow = server.controller.workflow(sites, job.min_clients, job.mandatory_clients)
    aggregator = AggregatorSpec(
        plan_hash="",
        collaborators=tuple(sites),
        rounds_to_train=workflow.rounds,
        # a Client API script scores the global model it received, before training on it
        tasks={"train": TaskSpec("train", "train_task", {"metrics_judge": "received_model"})},
        aggregation={"train": workflow.aggregation} if workflow.aggregation is not None else {},
        assigner=ComponentSpec(
            ("assigner",),
            aliases.RANDOM_ASSIGNER,
            {"task_groups": [{"name": "train", "percentage": 1.0, "tasks": ["train"]}]},
        ),
        straggler=workflow.straggler,
        outputs=OutputsSpec(init_path=INIT_PATH, best=_best_model(server)),
        name="auto",  # what a loaded plan names its aggregator before `fx plan initialize`
    )
    return ExperimentSpec(
        workspace=workspace,
        aggregator=aggregator,
        network=NetworkSpec(agg_addr="auto", agg_port="auto"),
        data_loader=ComponentSpec(("data_loader",), DATA_LOADER, {}),
        task_runner=ComponentSpec(
            ("task_runner",), TASK_RUNNER, {**runner_settings(apps, sites), "total_rounds": workflow.rounds}
        ),
        compression=ComponentSpec(("compression_pipeline",), aliases.NO_COMPRESSION, {}),
        data_paths={site: site for site in sites},  # a site's name is its data path
        source=str(workspace / "plan" / "plan.yaml"),
    )


def runner_settings(apps: Mapping[str, App], sites: list[str]) -> dict[str, Any]:
    """The client runner's settings: what every client runs, and each site's own under `sites`."""
    common = apps.get(ALL_SITES) or App(ALL_SITES)
    settings: dict[str, Any] = {}
    if common.handler is not None:
        settings.update(common.handler.settings)
    settings["initial_model"] = INIT_PATH
    for kind in FilterType:
        settings[f"{kind.value}_filters"] = common.filter_entries(kind.value)
    if common.components:
        settings["components"] = {key: entry.entry() for key, entry in common.components.items()}
    overrides: dict[str, Any] = {}
    for site in sites:
        own = apps.get(site)
        if own is None:
            continue
        override: dict[str, Any] = {}
        if own.handler is not None:
            override.update({"script": None, "executor": None})
            override.update(own.handler.settings)
        for kind in FilterType:
            if own.filter_entries(kind.value):
                key = f"{kind.value}_filters"
                override[key] = settings[key] + own.filter_entries(kind.value)
        if own.components:
            merged = dict(settings.get("components", {}))
            merged.update({key: entry.entry() for key, entry in own.components.items()})
            override["components"] = merged
        if override:
            overrides[site] = override
    if overrides:
        settings["sites"] = overrides
    return settings


def _best_model(server: App) -> BestModelSpec:
    selectors = [
        entry.obj for entry in server.components.values() if isinstance(entry.obj, IntimeModelSelector)
    ]
    if len(selectors) > 1:
        raise UsageError("the server has more than one IntimeModelSelector; the core keeps one best model")
    if selectors:
        return selectors[0].best_model()
    return IntimeModelSelector().best_model()  # FLARE's default key metric, on the train results


def _deploy_map(apps: Mapping[str, App], sites: list[str]) -> dict[str, list[str]]:
    deploy: dict[str, list[str]] = {"app_server": [SERVER]}
    if ALL_SITES in apps:
        deploy["app"] = [ALL_SITES]
    for site in sites:
        if site in apps:
            deploy[apps[site].name] = [site]
    return deploy


def _source_files(apps: Mapping[str, App]) -> tuple[dict[str, Path], dict[str, list[str]]]:
    """src/... -> source, and the files each app brought; two different files for one name are refused."""
    files: dict[str, Path] = {}
    digests: dict[str, str] = {}
    app_files: dict[str, list[str]] = {}
    for app in apps.values():
        listed: list[str] = []
        for name, source in _app_sources(app):
            digest = hashlib.sha256(source.read_bytes()).hexdigest()
            if name in files and digests[name] != digest:
                raise UsageError(
                    f"two different files would be shipped as {name}: {files[name]} and {source}; rename one"
                )
            files.setdefault(name, source)
            digests.setdefault(name, digest)
            if name not in listed:
                listed.append(name)
        if listed:
            app_files[app.name] = listed
    return files, app_files


def _app_sources(app: App) -> Iterator[tuple[str, Path]]:
    for resource in app.resources:
        if resource.is_dir():
            for path in sorted(resource.rglob("*")):
                relative = path.relative_to(resource)
                if path.is_file() and not _skipped(relative):
                    yield f"src/{relative.as_posix()}", path
        elif resource.is_file():
            yield f"src/{resource.name}", resource
        else:
            raise UsageError(f"resource {resource} no longer exists")
    shipped = [entry.shipped for entry in app.components.values()]
    shipped += [item.exported.shipped for item in app.filters]
    if app.handler is not None:
        shipped.append(app.handler.shipped)
    for module in shipped:
        if module is not None:
            yield f"src/{module.name}", module


def _skipped(relative: Path) -> bool:
    return (
        any(part.startswith(".") or part in _NOT_SHIPPED for part in relative.parts)
        or relative.suffix == ".pyc"
    )
