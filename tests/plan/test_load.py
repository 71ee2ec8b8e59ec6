"""Loading: defaults lookup and merging, OpenFL names, typed settings, the resolved config."""

from __future__ import annotations

import pytest

from openfl_cli.errors import PlanError
from openfl_cli.plan import AggregatorSettings, CollaboratorSettings, NetworkSettings, Plan, TaskSpec
from openfl_cli.plan.sources import deep_merge

from .conftest import PLAN

SEED_PLAN = """\
# Copyright (C) 2020-2024 Intel Corporation
aggregator:
  settings:
    best_state_path: save/best.pbuf
    db_store_rounds: 2
    init_state_path: save/init.pbuf
    last_state_path: save/last.pbuf
    rounds_to_train: 2
    write_logs: false
  template: openfl.component.aggregator.Aggregator
  defaults : plan/defaults/aggregator.yaml
assigner :
  defaults : plan/defaults/assigner.yaml
collaborator:
  settings:
    db_store_rounds: 1
    delta_updates: false
    opt_treatment: RESET
  template: openfl.component.collaborator.Collaborator
compression_pipeline:
  settings: {}
  template: openfl.pipelines.NoCompressionPipeline
data_loader:
  settings:
    batch_size: 64
    collaborator_count: 2
  template: src.dataloader.TinyLoader
network:
  defaults: plan/defaults/network.yaml
task_runner:
  settings: {}
  template: src.taskrunner.TinyRunner
tasks:
  aggregated_model_validation:
    function: validate_task
    kwargs:
      apply: global
      metrics:
      - acc
  locally_tuned_model_validation:
    function: validate_task
    kwargs:
      apply: local
      metrics:
      - acc
  settings: {}
  train:
    function: train_task
    kwargs:
      epochs: 1
      metrics:
      - loss
"""


def load(root, **kwargs) -> Plan:
    return Plan.load(root / "plan/plan.yaml", root / "plan/cols.yaml", root / "plan/data.yaml", **kwargs)


def test_openfl_plan_loads_unchanged(make_workspace):
    plan = load(make_workspace(SEED_PLAN))
    config = plan.config
    assert config["aggregator"]["template"] == "openfl_cli.federation.aggregator.Aggregator"
    assert config["collaborator"]["template"] == "openfl_cli.federation.collaborator.Collaborator"
    assert config["compression_pipeline"]["template"] == "openfl_cli.tensors.pipelines.NoCompressionPipeline"
    assert config["network"]["template"] == "openfl_cli.plan.schema.NetworkSettings"
    assert plan.aggregator_settings.rounds_to_train == 2
    assert plan.aggregator_settings.write_logs is False
    assert plan.collaborator_settings.use_delta_updates is False
    assert config["collaborator"]["settings"]["use_delta_updates"] is False
    assert "delta_updates" not in config["collaborator"]["settings"]
    assert plan.tasks["train"] == TaskSpec("train", "train_task", {"epochs": 1, "metrics": ["loss"]}, None)
    assert set(plan.tasks) == {"aggregated_model_validation", "locally_tuned_model_validation", "train"}
    assert config["tasks"]["settings"] == {}
    assert plan.collaborators == ["one", "two"]
    assert plan.data_paths == {"one": "1", "two": "2"}
    assert plan.workspace == plan.plan_path.parent.parent


def test_package_defaults_fill_in_typed_settings(make_workspace):
    plan = load(make_workspace())
    assert plan.aggregator_settings == AggregatorSettings(rounds_to_train=3)
    assert plan.network_settings == NetworkSettings()
    assert plan.network_settings.agg_addr == "auto"
    assert plan.network_settings.client_reconnect_timeout == 600
    assert plan.config["assigner"]["settings"]["task_groups"][0]["percentage"] == 1.0
    assert plan.tasks["locally_tuned_model_validation"].kwargs == {"apply": "local", "metrics": ["acc"]}


def test_workspace_defaults_beat_package_defaults(make_workspace):
    root = make_workspace(
        files={"plan/defaults/network.yaml": "settings:\n  client_reconnect_interval: 7\n  agg_port: 50001\n"}
    )
    network = load(root).network_settings
    assert network.client_reconnect_interval == 7
    assert network.agg_port == 50001
    # the workspace file replaced the package file entirely: its other values are the schema's
    assert network.use_tls is True


def test_plan_wins_over_defaults_and_merge_is_deep(make_workspace):
    plan = PLAN.replace(
        "network:\n  defaults: plan/defaults/network.yaml\n",
        "network:\n  defaults: plan/defaults/network.yaml\n  settings:\n    use_tls: false\n",
    )
    loaded = load(make_workspace(plan))
    assert loaded.network_settings.use_tls is False
    assert loaded.network_settings.cert_folder == "cert"  # from the package defaults
    assert loaded.aggregator_settings.rounds_to_train == 3
    assert loaded.aggregator_settings.persistent_db_path == "local_state/tensor.db"


def test_deep_merge_replaces_lists_and_keeps_inputs():
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    overlay = {"a": {"c": [3]}, "e": 2}
    assert deep_merge(base, overlay) == {"a": {"b": 1, "c": [3]}, "d": 1, "e": 2}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1}


def test_nested_defaults(make_workspace):
    files = {
        "plan/defaults/agg_site.yaml": (
            "defaults: plan/defaults/agg_base.yaml\nsettings:\n  rounds_to_train: 5\n"
        ),
        "plan/defaults/agg_base.yaml": (
            "defaults: plan/defaults/aggregator.yaml\nsettings:\n  rounds_to_train: 1\n  write_logs: false\n"
        ),
    }
    plan = PLAN.replace("plan/defaults/aggregator.yaml", "plan/defaults/agg_site.yaml")
    plan = plan.replace("  settings:\n    rounds_to_train: 3\n", "")
    settings = load(make_workspace(plan, files=files)).aggregator_settings
    assert settings.rounds_to_train == 5  # the nearest file wins
    assert settings.write_logs is False  # from the middle file
    assert settings.best_state_path == "save/best.pbuf"  # from the package file at the bottom


def test_defaults_cycle_is_an_error(make_workspace):
    files = {
        "plan/defaults/a.yaml": "defaults: plan/defaults/b.yaml\n",
        "plan/defaults/b.yaml": "defaults: plan/defaults/a.yaml\n",
    }
    plan = PLAN.replace("plan/defaults/aggregator.yaml", "plan/defaults/a.yaml")
    with pytest.raises(PlanError, match="defaults cycle") as caught:
        load(make_workspace(plan, files=files))
    assert caught.value.key == "aggregator.defaults"


def test_self_cycle_is_an_error(make_workspace):
    files = {"plan/defaults/aggregator.yaml": "defaults: plan/defaults/aggregator.yaml\n"}
    with pytest.raises(PlanError, match="defaults cycle"):
        load(make_workspace(files=files))


def test_openfl_network_aliases(make_workspace):
    plan = PLAN.replace(
        "network:\n  defaults: plan/defaults/network.yaml\n",
        "network:\n  template: openfl.federation.Network\n  settings:\n"
        "    tls: false\n    disable_client_auth: true\n    hash_salt: auto\n    agg_port: 1234\n",
    )
    loaded = load(make_workspace(plan))
    assert loaded.network_settings.use_tls is False
    assert loaded.network_settings.require_client_auth is False
    assert "hash_salt" not in loaded.config["network"]["settings"]
    assert loaded.network_settings.agg_port == 1234


def test_alias_and_name_together_is_an_error(make_workspace):
    plan = PLAN.replace(
        "network:\n  defaults: plan/defaults/network.yaml\n",
        "network:\n  settings:\n    tls: false\n    use_tls: true\n",
    )
    with pytest.raises(PlanError, match="given twice"):
        load(make_workspace(plan))


def test_missing_optional_sections_come_from_package_defaults(make_workspace):
    plan = "\n".join(
        [
            "data_loader: {template: src.dataloader.TinyLoader, settings: {batch_size: 2}}",
            "task_runner: {template: src.taskrunner.TinyRunner}",
            "tasks: {defaults: plan/defaults/tasks_torch.yaml}",
        ]
    )
    loaded = load(make_workspace(plan))
    assert loaded.config["assigner"]["template"] == "openfl_cli.federation.assigner.RandomGroupedAssigner"
    assert loaded.config["straggler_handling_policy"]["template"].endswith("WaitForAllPolicy")
    assert loaded.aggregator_settings == AggregatorSettings()


def test_aggregation_type_and_straggler_aliases(make_workspace):
    plan = PLAN + (
        "  train:\n    aggregation_type:\n      template: openfl.interface.aggregation_functions.Median\n"
        "straggler_handling_policy:\n"
        "  template: openfl.component.straggler_handling_functions.CutoffTimeBasedStragglerHandling\n"
        "  settings: {straggler_cutoff_time: 30}\n"
    )
    loaded = load(make_workspace(plan))
    assert loaded.tasks["train"].aggregation == ("openfl_cli.federation.aggregation.Median", {})
    assert loaded.tasks["train"].function == "train_task"  # merged with the defaults file's entry
    assert (
        loaded.config["straggler_handling_policy"]["template"]
        == "openfl_cli.federation.straggler.CutoffTimePolicy"
    )


def test_relative_paths_resolve_against_the_workspace(make_workspace, in_workspace):
    root = in_workspace(make_workspace())
    plan = Plan.load()
    assert plan.workspace == root.resolve()
    assert plan.resolve_path("save/init.pbuf") == root.resolve() / "save/init.pbuf"
    assert str(plan.resolve_path("/abs/x")) == "/abs/x"


def test_missing_cols_and_data_are_empty(make_workspace):
    plan = load(make_workspace(cols=None, data=None))
    assert plan.collaborators == []
    assert plan.data_paths == {}


def test_openfl_setting_names_beat_new_names_from_defaults(make_workspace):
    # the package network.yaml says use_tls/require_client_auth: true; the plan's OpenFL names win
    plan = PLAN.replace(
        "network:\n  defaults: plan/defaults/network.yaml\n",
        "network:\n  defaults: plan/defaults/network.yaml\n  settings:\n"
        "    tls: false\n    disable_client_auth: true\n",
    )
    network = load(make_workspace(plan)).network_settings
    assert (network.use_tls, network.require_client_auth) == (False, False)
    plan = PLAN.replace(
        "  template: openfl_cli.federation.collaborator.Collaborator\n",
        "  template: openfl_cli.federation.collaborator.Collaborator\n  settings: {delta_updates: true}\n",
    )
    assert load(make_workspace(plan)).collaborator_settings.use_delta_updates is True


def test_openfl_callback_mapping_form(make_workspace):
    plan = PLAN.replace(
        "    rounds_to_train: 3\n", "    log_metric_callback:\n      template: src.utils.write\n"
    )
    assert load(make_workspace(plan)).aggregator_settings.log_metric_callback == "src.utils.write"


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("aggregator", AggregatorSettings),
        ("collaborator", CollaboratorSettings),
        ("network", NetworkSettings),
    ],
)
def test_package_defaults_match_the_schema(name, cls):
    import yaml

    from openfl_cli.utils.resources import bundled_dir

    document = yaml.safe_load((bundled_dir("plan_defaults") / f"{name}.yaml").read_text())
    assert document["settings"] == cls().to_dict()


def test_every_package_defaults_file_is_a_mapping():
    import yaml

    from openfl_cli.utils.resources import bundled_dir

    names = sorted(p.name for p in bundled_dir("plan_defaults").glob("*.yaml"))
    assert len(names) == 11
    for name in names:
        assert isinstance(yaml.safe_load((bundled_dir("plan_defaults") / name).read_text()), dict), name
