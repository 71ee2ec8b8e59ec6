"""A loaded plan as the typed specs that participants are built from (`openfl_cli.federation.specs`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from openfl_cli.federation.specs import (
    AggregatorSpec,
    BestModelSpec,
    ComponentSpec,
    ExperimentSpec,
    NetworkSpec,
    OutputsSpec,
)
from openfl_cli.transport.messages import TaskSpec

if TYPE_CHECKING:
    from openfl_cli.plan.plan import Plan


def experiment_spec(plan: Plan) -> ExperimentSpec:
    aggregator = plan.aggregator_settings
    collaborator = plan.collaborator_settings
    network = plan.network_settings
    outputs = OutputsSpec(
        init_path=aggregator.init_state_path,
        last_path=aggregator.last_state_path,
        best_path=aggregator.best_state_path,
        best=BestModelSpec(
            aggregator.best_metric_task, aggregator.best_metric, aggregator.best_metric_higher_is_better
        ),
        write_logs=aggregator.write_logs,
        persist_checkpoint=aggregator.persist_checkpoint,
        persistent_db=aggregator.persistent_db_path,
        db_store_rounds=aggregator.db_store_rounds,
        save_native_model=aggregator.save_native_model,
        native_model_path=aggregator.native_model_path,
        metric_callback=aggregator.log_metric_callback,
    )
    tasks = {
        name: TaskSpec(name=spec.name, function=spec.function, kwargs=dict(spec.kwargs))
        for name, spec in plan.tasks.items()
    }
    aggregation = {
        name: ComponentSpec(("tasks", name, "aggregation_type"), *spec.aggregation)
        for name, spec in plan.tasks.items()
        if spec.aggregation is not None
    }
    agg_spec = AggregatorSpec(
        plan_hash=plan.hash,
        collaborators=tuple(plan.collaborators),
        rounds_to_train=aggregator.rounds_to_train,
        tasks=tasks,
        aggregation=aggregation,
        assigner=plan.component("assigner"),
        straggler=plan.component("straggler_handling_policy"),
        outputs=outputs,
        opt_treatment=collaborator.opt_treatment,
        use_delta_updates=collaborator.use_delta_updates,
        name=str(network.agg_addr),
    )
    extra: dict[str, Any] = {}
    if "settings" in plan.config["tasks"]:
        extra["tasks.settings"] = plan.config["tasks"]["settings"]
    if collaborator.db_store_rounds != 1:
        extra["collaborator.db_store_rounds"] = collaborator.db_store_rounds
    if "straggler_handling_policy" not in plan.config:
        extra["straggler.implicit"] = True
    return ExperimentSpec(
        workspace=plan.workspace,
        aggregator=agg_spec,
        network=NetworkSpec(
            agg_addr=str(network.agg_addr),
            agg_port=network.agg_port,
            bind_addr=network.bind_addr,
            use_tls=network.use_tls,
            require_client_auth=network.require_client_auth,
            reconnect_interval=network.client_reconnect_interval,
            reconnect_timeout=network.client_reconnect_timeout,
            cert_folder=network.cert_folder,
        ),
        data_loader=plan.component("data_loader"),
        task_runner=plan.component("task_runner"),
        compression=plan.component("compression_pipeline") if "compression_pipeline" in plan.config else None,
        data_paths=dict(plan.data_paths),
        collaborator_metric_callback=collaborator.log_metric_callback,
        extra=extra,
        source=str(plan.plan_path),
    )
