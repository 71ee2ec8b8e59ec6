"""`fx collaborator start`: build the collaborator of a plan and work until the experiment ends."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from openfl_cli.federation.collaborator import Collaborator, is_training
from openfl_cli.node.common import (
    address_of,
    load_plan,
    metric_callback,
    wire_task,
)

if TYPE_CHECKING:
    from openfl_cli.plan import Plan
    from openfl_cli.transport.client import AggregatorClient

log = logging.getLogger(__name__)

POLL_SECONDS = 30.0  # a long poll; the aggregator answers as soon as there is work


def open_client(
    plan: Plan,
    name: str,
    *,
    with_pipeline: bool = True,
    reconnect_interval: float | None = None,
    reconnect_timeout: float | None = None,
) -> AggregatorClient:
    from openfl_cli.transport.client import AggregatorClient

    network = plan.network_settings
    address, port = address_of(plan)
    tls = None
    if network.use_tls:
        from openfl_cli.pki.layout import collaborator_tls_paths

        tls = collaborator_tls_paths(plan.workspace, name)
        _require_files(
            name,
            (tls.cert_chain, tls.certificate, tls.private_key)
            if network.require_client_auth
            else (tls.cert_chain,),
        )
    return AggregatorClient(
        address,
        port,
        name,
        plan.hash,
        tls,
        use_tls=network.use_tls,
        require_client_auth=network.require_client_auth,
        reconnect_interval=reconnect_interval or network.client_reconnect_interval,
        reconnect_timeout=reconnect_timeout or network.client_reconnect_timeout,
        pipeline=plan.build_compression_pipeline() if with_pipeline else None,
    )


def build_collaborator(
    plan: Plan, name: str, client: AggregatorClient, data_path: str | None = None
) -> Collaborator:
    settings = plan.collaborator_settings
    runner = plan.build_task_runner(plan.build_data_loader(name, data_path))
    training = next((spec.name for spec in plan.tasks.values() if is_training(spec.function)), None)
    return Collaborator(
        name,
        runner,
        client,
        opt_treatment=settings.opt_treatment,
        use_delta_updates=settings.use_delta_updates,
        training_task=wire_task(plan, training) if training else None,
        poll_seconds=POLL_SECONDS,
        retry_interval=plan.network_settings.client_reconnect_interval,
        metric_callback=metric_callback(plan, settings.log_metric_callback),
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
    client = open_client(plan, name)
    try:
        print(f"collaborator {name}: connecting to {client.target} (plan {plan.hash[:12]}...)", flush=True)
        client.ping()  # refusals (authorization, plan) before the data is loaded
        return build_collaborator(plan, name, client).run()
    finally:
        client.close()


def _require_files(name: str, paths: tuple[Path, ...]) -> None:
    from openfl_cli.errors import SecurityError

    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise SecurityError(
            f"collaborator {name}: missing TLS file(s) {', '.join(missing)};"
            f" certify it first (`fx collaborator generate-cert-request -n {name}`, then `certify --import`)"
        )
