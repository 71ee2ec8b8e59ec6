"""Every kind of plan error names the file the value came from, the dotted key and what was expected."""

from __future__ import annotations

import pytest

from openfl_cli.errors import PlanError, UsageError
from openfl_cli.plan import Plan

from .conftest import PLAN


def error_of(root, in_workspace, plan: str | None = None) -> PlanError:
    in_workspace(root)
    with pytest.raises(PlanError) as caught:
        Plan.load()
    return caught.value


def with_agg_setting(line: str) -> str:
    return PLAN.replace("    rounds_to_train: 3\n", f"    {line}\n")


def test_plan_error_is_a_usage_error():
    assert issubclass(PlanError, UsageError)


def test_bad_type_message(make_workspace, in_workspace):
    error = error_of(make_workspace(with_agg_setting("rounds_to_train: ten")), in_workspace)
    assert (
        str(error)
        == "plan/plan.yaml: aggregator.settings.rounds_to_train: expected a positive integer, got 'ten'"
    )
    assert error.file == "plan/plan.yaml"
    assert error.key == "aggregator.settings.rounds_to_train"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("rounds_to_train: 0", "expected a positive integer, got 0"),
        ("rounds_to_train: true", "expected a positive integer, got True"),
        ("write_logs: 'yes'", "expected true or false, got 'yes'"),
        ("db_store_rounds: 0", "expected an integer >= 1, got 0"),
        ("log_metric_callback: not a path", "expected a dotted Python path"),
        ("init_state_path: ''", "expected a non-empty string"),
    ],
)
def test_aggregator_values(make_workspace, in_workspace, line, expected):
    error = error_of(make_workspace(with_agg_setting(line)), in_workspace)
    assert error.key == f"aggregator.settings.{line.split(':')[0]}"
    assert expected in error.detail


@pytest.mark.parametrize(
    ("settings", "key", "expected"),
    [
        ("agg_port: 70000", "agg_port", "expected a port number from 1 to 65535 or 'auto', got 70000"),
        ("agg_addr: 'bad host/name'", "agg_addr", "expected a host name, an IP address or 'auto'"),
        ("bind_addr: agg.example.org", "bind_addr", "expected an IP address of this machine: 0.0.0.0"),
        ("client_reconnect_interval: -1", "client_reconnect_interval", "expected a positive number"),
        ("disable_client_auth: 1", "disable_client_auth", "expected true or false, got 1"),
    ],
)
def test_network_values(make_workspace, in_workspace, settings, key, expected):
    plan = PLAN.replace(
        "network:\n  defaults: plan/defaults/network.yaml\n",
        f"network:\n  defaults: plan/defaults/network.yaml\n  settings:\n    {settings}\n",
    )
    error = error_of(make_workspace(plan), in_workspace)
    assert error.file == "plan/plan.yaml"
    assert error.key == f"network.settings.{key}"
    assert expected in error.detail


def test_opt_treatment_choices(make_workspace, in_workspace):
    plan = PLAN.replace(
        "  template: openfl_cli.federation.collaborator.Collaborator\n",
        "  template: openfl_cli.federation.collaborator.Collaborator\n  settings:\n    opt_treatment: KEEP\n",
    )
    error = error_of(make_workspace(plan), in_workspace)
    assert str(error) == (
        "plan/plan.yaml: collaborator.settings.opt_treatment: "
        "expected one of RESET, CONTINUE_LOCAL, CONTINUE_GLOBAL, got 'KEEP'"
    )


def test_unknown_setting_did_you_mean(make_workspace, in_workspace):
    error = error_of(make_workspace(with_agg_setting("rounds_to_trian: 3")), in_workspace)
    assert error.key == "aggregator.settings.rounds_to_trian"
    assert "unknown setting (did you mean 'rounds_to_train'?)" in error.detail


def test_unknown_section_did_you_mean(make_workspace, in_workspace):
    error = error_of(make_workspace(PLAN + "agregator: {}\n"), in_workspace)
    assert error.key == "agregator"
    assert "did you mean 'aggregator'?" in error.detail


def test_unknown_section_key(make_workspace, in_workspace):
    plan = PLAN.replace("  settings:\n    rounds_to_train: 3\n", "  setings:\n    rounds_to_train: 3\n")
    error = error_of(make_workspace(plan), in_workspace)
    assert error.key == "aggregator.setings"
    assert "did you mean 'settings'?" in error.detail


def test_error_names_the_defaults_file_it_came_from(make_workspace, in_workspace):
    files = {"plan/defaults/aggregator.yaml": "settings:\n  write_logs: maybe\n"}
    error = error_of(make_workspace(files=files), in_workspace)
    assert str(error) == (
        "plan/defaults/aggregator.yaml: aggregator.settings.write_logs: expected true or false, got 'maybe'"
    )


def test_value_overridden_by_the_plan_is_not_blamed_on_defaults(make_workspace, in_workspace):
    files = {"plan/defaults/aggregator.yaml": "settings:\n  rounds_to_train: 4\n"}
    error = error_of(make_workspace(with_agg_setting("rounds_to_train: -2"), files=files), in_workspace)
    assert error.file == "plan/plan.yaml"


def test_missing_plan_file(tmp_path, in_workspace):
    in_workspace(tmp_path)
    with pytest.raises(PlanError) as caught:
        Plan.load("plan/nothing.yaml")
    assert str(caught.value) == "plan/nothing.yaml: plan file not found"


def test_missing_defaults_file(make_workspace, in_workspace):
    plan = PLAN.replace("plan/defaults/aggregator.yaml", "plan/defaults/agregator.yaml")
    error = error_of(make_workspace(plan), in_workspace)
    assert error.key == "aggregator.defaults"
    assert "'plan/defaults/agregator.yaml' not found" in error.detail


def test_yaml_syntax_error_has_line_number(make_workspace, in_workspace):
    plan = PLAN.replace("    rounds_to_train: 3\n", "    rounds_to_train: [3\n")
    error = error_of(make_workspace(plan), in_workspace)
    assert error.file == "plan/plan.yaml"
    assert "invalid YAML at line" in str(error)
    broken = make_workspace("aggregator:\n  settings:\n    a: 1\n   b: 2\n")
    error = error_of(broken, in_workspace)
    assert "line 4" in str(error)


def test_yaml_syntax_error_in_defaults_file(make_workspace, in_workspace):
    files = {"plan/defaults/network.yaml": "settings: {use_tls: true\n"}
    error = error_of(make_workspace(files=files), in_workspace)
    assert error.file == "plan/defaults/network.yaml"
    assert "invalid YAML at line 2" in str(error)


def test_no_python_objects_from_yaml(make_workspace, in_workspace):
    error = error_of(make_workspace(PLAN + "x: !!python/object/apply:os.system ['true']\n"), in_workspace)
    assert "invalid YAML" in str(error)


def test_missing_template(make_workspace, in_workspace):
    plan = PLAN.replace("  template: src.dataloader.TinyLoader\n", "")
    error = error_of(make_workspace(plan), in_workspace)
    assert str(error) == "plan/plan.yaml: data_loader.template: missing: expected a dotted class path"


def test_missing_required_section(make_workspace, in_workspace):
    plan = PLAN.replace("tasks:\n  defaults: plan/defaults/tasks_numpy.yaml\n", "")
    error = error_of(make_workspace(plan), in_workspace)
    assert error.key == "tasks"
    assert "missing section" in error.detail


def test_wrong_template_for_typed_section(make_workspace, in_workspace):
    plan = PLAN.replace("openfl_cli.federation.aggregator.Aggregator", "my.Aggregator")
    error = error_of(make_workspace(plan), in_workspace)
    assert error.key == "aggregator.template"


def test_data_loader_batch_size(make_workspace, in_workspace):
    error = error_of(make_workspace(PLAN.replace("batch_size: 4", "batch_size: four")), in_workspace)
    assert (
        str(error)
        == "plan/plan.yaml: data_loader.settings.batch_size: expected a positive integer, got 'four'"
    )


def test_task_errors(make_workspace, in_workspace):
    error = error_of(make_workspace(PLAN + "  train:\n    fuction: train_task\n"), in_workspace)
    assert error.key == "tasks.train.fuction"
    assert "did you mean 'function'?" in error.detail
    error = error_of(make_workspace(PLAN + "  train:\n    function: 'train task'\n"), in_workspace)
    assert error.key == "tasks.train.function"
    error = error_of(make_workspace(PLAN + "  extra:\n    kwargs: {}\n"), in_workspace)
    assert error.key == "tasks.extra"
    assert "missing 'function'" in error.detail


def test_task_group_names_an_unknown_task(make_workspace, in_workspace):
    plan = PLAN.replace(
        "assigner:\n  defaults: plan/defaults/assigner.yaml\n",
        "assigner:\n  defaults: plan/defaults/assigner.yaml\n  settings:\n    task_groups:\n"
        "    - name: g\n      percentage: 1.0\n      tasks: [trian]\n",
    )
    error = error_of(make_workspace(plan), in_workspace)
    assert "'trian'" in error.detail
    assert "did you mean 'train'?" in error.detail


def test_best_metric_task_must_be_a_task_of_the_plan(make_workspace, in_workspace):
    error = error_of(
        make_workspace(with_agg_setting("best_metric_task: aggregated_model_validaton")), in_workspace
    )
    assert error.key == "aggregator.settings.best_metric_task"
    assert error.file.endswith("plan.yaml")
    assert "did you mean 'aggregated_model_validation'?" in error.detail


def test_absolute_plan_path_gives_absolute_file_names(make_workspace):
    root = make_workspace(with_agg_setting("rounds_to_train: x"))
    with pytest.raises(PlanError) as caught:
        Plan.load(root / "plan/plan.yaml", None, None)
    assert caught.value.file == str(root / "plan/plan.yaml")
