"""`fx collaborator start`: build the collaborator of a plan and work until the experiment ends."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from openfl_cli.federation.collaborator import Collaborator
from openfl_cli.node.common import (
    address_of,
    checked_data_path,
    load_plan,
    metric_callback,
    require_tls_files,
)

if TYPE_CHECKING:
    from openfl_cli.data.base import DataLoader
    from openfl_cli.federation.collaborator import AggregatorLink
    from openfl_cli.federation.progress import TaskProgress
    from openfl_cli.federation.specs import CollaboratorSpec, ComponentBuilder, ComponentSpec, ExperimentSpec
    from openfl_cli.runners.base import TaskRunner
    from openfl_cli.tensors.pipelines import TensorEncoder
    from openfl_cli.transport.client import AggregatorClient

log = logging.getLogger(__name__)

POLL_SECONDS = 30.0  # a long poll; the aggregator answers as soon as there is work


def open_client(
    spec: ExperimentSpec,
    builder: ComponentBuilder,
    name: str,
    *,
    with_pipeline: bool = True,
    reconnect_interval: float | None = None,
    reconnect_timeout: float | None = None,
) -> AggregatorClient:
    from openfl_cli.transport.client import AggregatorClient

    network = spec.network
    address, port = address_of(network)
    tls = None
    if network.use_tls:
        from openfl_cli.pki.credentials import collaborator_material

        tls = require_tls_files(spec.workspace, name, network.require_client_auth)
    return AggregatorClient(
        address,
        port,
        name,
        spec.plan_hash,
        collaborator_material(tls, network.require_client_auth) if tls is not None else None,
        use_tls=network.use_tls,
        require_client_auth=network.require_client_auth,
        reconnect_interval=reconnect_interval or network.reconnect_interval,
        reconnect_timeout=reconnect_timeout or network.reconnect_timeout,
        pipeline=build_pipeline(spec.compression, builder) if with_pipeline else None,
    )


def build_pipeline(component: ComponentSpec | None, builder: ComponentBuilder) -> TensorEncoder | None:
    pipeline: TensorEncoder | None = builder.build(component) if component is not None else None
    return pipeline


def build_runner(spec: CollaboratorSpec, builder: ComponentBuilder) -> TaskRunner:
    """The collaborator's task runner over its own data loader."""
    loader: DataLoader = builder.build(spec.data_loader, {"data_path": spec.data_path})
    loader.collaborator_name = spec.name  # whose data it is (a script runner's site)
    runner: TaskRunner = builder.build(spec.task_runner, {"data_loader": loader})
    return runner


def build_collaborator(
    spec: CollaboratorSpec,
    builder: ComponentBuilder,
    link: AggregatorLink,
    *,
    runner: TaskRunner | None = None,
    retry_interval: float = 5.0,
    progress: TaskProgress | None = None,
    background_upload: bool = True,
) -> Collaborator:
    return Collaborator(
        spec.name,
        runner if runner is not None else build_runner(spec, builder),
        link,
        opt_treatment=spec.opt_treatment,
        use_delta_updates=spec.use_delta_updates,
        training_task=spec.training_task,
        poll_seconds=POLL_SECONDS,
        retry_interval=retry_interval,
        metric_callback=metric_callback(builder, spec.metric_callback),
        progress=progress,
        background_upload=background_upload,
    )


def start_collaborator(
    name: str,
    plan_path: str | Path = "plan/plan.yaml",
    data_config: str | Path = "plan/data.yaml",
) -> int:
    """Run collaborator `name` until the aggregator ends the experiment; return the rounds it worked."""
    from openfl_cli.utils.allocator import tune_for_collaborator
    from openfl_cli.utils.names import check_collaborator_name

    check_collaborator_name(name)
    tune_for_collaborator()  # every round allocates the same large buffers again
    plan = load_plan(plan_path, None, data_config)
    spec = plan.experiment()
    # local mistakes (data path, TLS files) are reported before anything connects
    own = spec.collaborator(name, checked_data_path(plan, name))
    client = open_client(spec, plan, name)
    try:
        print(f"collaborator {name}: connecting to {client.target} (plan {plan.hash[:12]}...)", flush=True)
        client.ping()  # refusals (authorization, plan) before the data is loaded
        runner = _runner_with_data(own, plan)
        collaborator = build_collaborator(
            own, plan, client, runner=runner, retry_interval=spec.network.reconnect_interval
        )
        return collaborator.run()
    finally:
        client.close()


def _runner_with_data(own: CollaboratorSpec, builder: ComponentBuilder) -> TaskRunner:
    """The task runner with its data read now (a loader may defer reading until first asked), so that
    the first task's time is the task's own; the log says how long the data took."""
    started = time.monotonic()
    runner = build_runner(own, builder)
    train, valid = runner.train_sample_count, runner.valid_sample_count
    log.info(
        "collaborator %s: task runner and data ready in %.2f s (%d training, %d validation samples)",
        own.name,
        time.monotonic() - started,
        train,
        valid,
    )
    return runner
