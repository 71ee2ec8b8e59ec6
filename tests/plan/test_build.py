"""Building what the plan names: user templates from the workspace, settings checked against signatures."""

from __future__ import annotations

import subprocess
import sys

import pytest

from openfl_cli.errors import PlanError
from openfl_cli.plan import Plan

from .conftest import PLAN


def load(root) -> Plan:
    return Plan.load(root / "plan/plan.yaml", root / "plan/cols.yaml", root / "plan/data.yaml")


def test_build_data_loader_and_runner(make_workspace):
    plan = load(make_workspace(PLAN.replace("settings: {}\n", "settings: {hidden: 4}\n", 1)))
    loader = plan.build_data_loader("two")
    assert (loader.data_path, loader.batch_size, loader.collaborator_count) == ("2", 4, 2)
    runner = plan.build_task_runner(loader)
    assert runner.data_loader is loader
    assert runner.get_tensor_dict()["dense/w"].shape == (2, 4)


def test_unknown_collaborator_has_no_data_path(make_workspace):
    plan = load(make_workspace())
    with pytest.raises(PlanError, match="no data path") as caught:
        plan.build_data_loader("three")
    assert caught.value.key == "three"


def test_unknown_runner_setting_names_the_key(make_workspace):
    plan = load(make_workspace(PLAN.replace("settings: {}\n", "settings: {hiden: 4}\n", 1)))
    with pytest.raises(PlanError) as caught:
        plan.build_task_runner(None)
    assert caught.value.file.endswith("plan/plan.yaml")
    assert caught.value.key == "task_runner.settings.hiden"
    assert "did you mean 'hidden'?" in caught.value.detail
    with pytest.raises(PlanError):
        plan.check_templates()


def test_loader_with_kwargs_accepts_any_setting(make_workspace):
    plan = load(make_workspace(PLAN.replace("batch_size: 4", "batch_size: 4\n    anything: 1")))
    assert plan.build_data_loader("one").settings == {"anything": 1}


def test_missing_required_argument(make_workspace):
    plan = load(make_workspace(PLAN.replace("    batch_size: 4\n", "")))
    with pytest.raises(PlanError, match="needs 'batch_size'") as caught:
        plan.build_data_loader("one")
    assert caught.value.key == "data_loader.template"


def test_setting_that_fx_passes_itself_is_refused(make_workspace):
    plan = load(make_workspace(PLAN.replace("batch_size: 4", "batch_size: 4\n    data_path: /x")))
    with pytest.raises(PlanError, match="set by fx itself"):
        plan.build_data_loader("one")


def test_unimportable_template(make_workspace):
    plan = load(make_workspace(PLAN.replace("src.taskrunner.TinyRunner", "src.taskrunner.Nope")))
    with pytest.raises(PlanError, match="has no attribute 'Nope'") as caught:
        plan.build_task_runner(None)
    assert caught.value.key == "task_runner.template"
    plan = load(make_workspace(PLAN.replace("src.taskrunner.TinyRunner", "src.missing.Runner")))
    with pytest.raises(PlanError, match=r"cannot import 'src\.missing'"):
        plan.build_task_runner(None)


def test_src_from_another_workspace_is_not_reused(make_workspace):
    other = (
        "from src.dataloader import TinyLoader as Base\n\n\nclass TinyLoader(Base):\n    marker = 'second'\n"
    )
    first = load(make_workspace(name="first"))
    second = load(make_workspace(name="second", files={"src/second.py": other}))
    assert type(first.build_data_loader("one")).__module__ == "src.dataloader"
    assert not hasattr(first.build_data_loader("one"), "marker")
    second.config["data_loader"]["template"] = "src.second.TinyLoader"
    assert second.build_data_loader("one").marker == "second"
    assert sys.modules["src"].__path__[0].startswith(str(second.workspace))
    # and back to the first workspace: its own src again
    assert not hasattr(first.build_data_loader("one"), "marker")
    assert sys.modules["src"].__path__[0].startswith(str(first.workspace))
    assert str(first.workspace) not in sys.path and str(second.workspace) not in sys.path


def test_federation_parts_build(make_workspace):
    plan = PLAN + (
        "  train:\n    aggregation_type:\n      template: openfl.interface.aggregation_functions.Median\n"
        "straggler_handling_policy:\n"
        "  template: openfl.component.straggler_handling_functions.CutoffTimeBasedStragglerHandling\n"
        "  settings: {straggler_cutoff_time: 30}\n"
    )
    loaded = load(make_workspace(plan))
    loaded.check_templates()
    assert type(loaded.build_assigner()).__name__ == "RandomGroupedAssigner"
    assert type(loaded.build_straggler_policy()).__name__ == "CutoffTimePolicy"
    assert type(loaded.build_compression_pipeline()).__name__ == "NoCompressionPipeline"
    assert type(loaded.build_aggregation_function("train")).__name__ == "Median"
    assert (
        type(loaded.build_aggregation_function("aggregated_model_validation")).__name__ == "WeightedAverage"
    )
    with pytest.raises(PlanError, match="no such task"):
        loaded.build_aggregation_function("nope")


def test_bad_settings_of_federation_parts(make_workspace):
    plan = PLAN + (
        "straggler_handling_policy:\n"
        "  template: openfl_cli.federation.straggler.CutoffTimePolicy\n"
        "  settings: {straggler_cutof_time: 30}\n"
    )
    loaded = load(make_workspace(plan))
    with pytest.raises(PlanError) as caught:
        loaded.build_straggler_policy()
    assert caught.value.key == "straggler_handling_policy.settings.straggler_cutof_time"
    assert "did you mean 'straggler_cutoff_time'?" in caught.value.detail


def test_loading_a_plan_imports_no_heavy_module(make_workspace):
    root = make_workspace()
    code = (
        "import sys; from openfl_cli.plan import Plan; "
        f"p = Plan.load({str(root / 'plan/plan.yaml')!r}); "
        "heavy = [m for m in ('numpy', 'grpc', 'src', 'openfl_cli.federation') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
