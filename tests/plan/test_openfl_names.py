"""OpenFL 1.9's template names and settings, as its plans and defaults files spell them."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

import pytest

from openfl_cli.errors import PlanError
from openfl_cli.plan import Plan
from openfl_cli.plan.aliases import NOT_IMPLEMENTED, TEMPLATE_ALIASES, canonical_template

from .conftest import PLAN


def load(root: Path) -> Plan:
    return Plan.load(root / "plan/plan.yaml", root / "plan/cols.yaml", root / "plan/data.yaml")


def _network(settings: str) -> str:
    return PLAN.replace(
        "network:\n  defaults: plan/defaults/network.yaml\n",
        f"network:\n  defaults: plan/defaults/network.yaml\n  settings:\n{settings}",
    )


@pytest.mark.parametrize("value", ["grpc", "gRPC"])
def test_transport_protocol_grpc_is_accepted(make_workspace, value):
    loaded = load(make_workspace(_network(f"    transport_protocol: {value}\n")))
    assert "transport_protocol" not in loaded.config["network"]["settings"]
    plain = load(make_workspace())
    assert loaded.hash == plain.hash  # it changes nothing: gRPC is what fx speaks


@pytest.mark.parametrize("value", ["rest", "'http'", "1"])
def test_another_transport_protocol_is_refused(make_workspace, value):
    with pytest.raises(PlanError) as refused:
        load(make_workspace(_network(f"    transport_protocol: {value}\n")))
    message = str(refused.value)
    assert "network.settings.transport_protocol: expected 'grpc'" in message
    assert "fx speaks gRPC only" in message and "\n" not in message


def test_openfl_defaults_values_of_ignored_settings_say_nothing(make_workspace, caplog):
    settings = "    hash_salt: auto\n    enable_atomic_connections: false\n"
    with caplog.at_level(logging.WARNING):
        load(make_workspace(_network(settings)))
    assert "fx ignores" not in caplog.text
    with caplog.at_level(logging.WARNING):
        load(make_workspace(_network("    hash_salt: pepper\n")))
    assert "network.settings.hash_salt is an OpenFL setting that fx ignores" in caplog.text


@pytest.mark.parametrize(
    ("openfl", "ours"),
    [
        ("openfl.component.WaitForAllPolicy", "openfl_cli.federation.straggler.WaitForAllPolicy"),
        ("openfl.component.CutoffTimePolicy", "openfl_cli.federation.straggler.CutoffTimePolicy"),
        ("openfl.component.PercentagePolicy", "openfl_cli.federation.straggler.PercentagePolicy"),
        (
            "openfl.component.aggregator.straggler_handling.WaitForAllPolicy",
            "openfl_cli.federation.straggler.WaitForAllPolicy",
        ),
    ],
)
def test_openfl_straggler_policies(make_workspace, openfl, ours):
    loaded = load(make_workspace(PLAN + f"straggler_handling_policy:\n  template: {openfl}\n"))
    assert loaded.config["straggler_handling_policy"]["template"] == ours
    loaded.check_templates()
    assert type(loaded.build_straggler_policy()).__name__ == ours.rpartition(".")[2]


def test_fedcurv_is_an_aggregation_type(make_workspace):
    plan = PLAN + (
        "  train:\n    aggregation_type:\n"
        "      template: openfl.interface.aggregation_functions.FedCurvWeightedAverage\n"
    )
    loaded = load(make_workspace(plan))
    loaded.check_templates()
    function = loaded.build_aggregation_function("train")
    assert type(function).__name__ == "FedCurvWeightedAverage"


@pytest.mark.parametrize(
    ("section", "template"),
    [
        ("compression_pipeline", "openfl.pipelines.KCPipeline"),
        ("compression_pipeline", "openfl.pipelines.stc_pipeline.STCPipeline"),
        ("straggler_handling_policy", "openfl.component.ConnectorFlower"),
        ("task_runner", "openfl.federated.XGBoostTaskRunner"),
    ],
)
def test_openfl_names_fx_does_not_implement_say_so(make_workspace, section, template):
    plan = _drop_section(PLAN, section) + f"{section}:\n  template: {template}\n"
    with pytest.raises(PlanError) as refused:
        load(make_workspace(plan))
    message = str(refused.value)
    assert f"{section}.template: fx does not implement OpenFL's {template}" in message
    assert "\n" not in message


def test_an_adaptive_aggregation_points_at_fx_server_optimizers(make_workspace):
    plan = PLAN + (
        "  train:\n    aggregation_type:\n"
        "      template: openfl.interface.aggregation_functions.AdamAdaptiveAggregation\n"
    )
    with pytest.raises(PlanError, match=r"does not implement OpenFL's .*AdamAdaptiveAggregation; .*FedAdam"):
        load(make_workspace(plan))


def test_every_mapped_name_builds_a_class_of_fx():
    for ours in set(TEMPLATE_ALIASES.values()):
        module, _, name = ours.rpartition(".")
        assert isinstance(getattr(importlib.import_module(module), name), type), ours


def test_mapped_and_unimplemented_names_do_not_overlap():
    assert not set(TEMPLATE_ALIASES) & set(NOT_IMPLEMENTED)
    for name in NOT_IMPLEMENTED:
        with pytest.raises(ValueError, match="fx does not implement"):
            canonical_template(name)


def test_openfl_1_9_pipeline_runner_and_loader_names():
    assert canonical_template("openfl.pipelines.NoCompressionPipeline").endswith("NoCompressionPipeline")
    assert canonical_template("openfl.federated.task.runner_keras.KerasTaskRunner") == (
        "openfl_cli.runners.keras.KerasTaskRunner"
    )
    torch_runner = canonical_template("openfl.federated.PyTorchTaskRunner")
    assert torch_runner == "openfl_cli.runners.torch.PyTorchTaskRunner"
    assert canonical_template("openfl.federated.data.loader.DataLoader") == "openfl_cli.data.base.DataLoader"
    assert canonical_template("src.taskrunner.Mine") == "src.taskrunner.Mine"


def _drop_section(plan: str, section: str) -> str:
    lines, kept, skipping = plan.splitlines(keepends=True), [], False
    for line in lines:
        if not line.startswith(" "):
            skipping = line.startswith(f"{section}:")
        if not skipping:
            kept.append(line)
    return "".join(kept)


# --- the best model of an OpenFL plan -----------------------------------------------------------

KERAS_TASKS = """\
aggregated_model_validation:
  function: validate_task
  kwargs: {batch_size: 32, apply: global, metrics: [accuracy]}
locally_tuned_model_validation:
  function: validate_task
  kwargs: {batch_size: 32, apply: local, metrics: [accuracy]}
train:
  function: train_task
  kwargs: {batch_size: 32, epochs: 1, metrics: [loss]}
"""
# OpenFL's defaults file names no best metric
OPENFL_AGGREGATOR = {
    "plan/defaults/aggregator.yaml": "template: openfl.component.Aggregator\nsettings: {db_store_rounds: 2}\n"
}


def test_an_openfl_plan_keeps_the_best_model_by_its_validation_metric(make_workspace):
    files = {"plan/defaults/tasks_numpy.yaml": KERAS_TASKS, **OPENFL_AGGREGATOR}
    loaded = load(make_workspace(files=files))
    assert loaded.aggregator_settings.best_metric == "accuracy"


def test_a_best_metric_set_in_the_plan_stays(make_workspace):
    files = {"plan/defaults/tasks_numpy.yaml": KERAS_TASKS, **OPENFL_AGGREGATOR}
    plan = PLAN.replace("    rounds_to_train: 3\n", "    rounds_to_train: 3\n    best_metric: loss\n")
    assert load(make_workspace(plan, files=files)).aggregator_settings.best_metric == "loss"


def test_fx_plans_keep_acc(make_workspace):
    assert load(make_workspace()).aggregator_settings.best_metric == "acc"
