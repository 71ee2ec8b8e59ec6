"""A template builds a class of its section's kind, and names that do not resolve get a did-you-mean."""

from __future__ import annotations

from pathlib import Path

import pytest

from openfl_cli.errors import PlanError
from openfl_cli.plan import Plan
from openfl_cli.plan.kinds import SECTION_KINDS

from .conftest import PLAN


def load(root: Path) -> Plan:
    return Plan.load(root / "plan/plan.yaml", root / "plan/cols.yaml", root / "plan/data.yaml")


def _with_section(name: str, body: str) -> str:
    """PLAN with section `name` replaced by `body` (indented YAML lines under it)."""
    start = PLAN.index(f"{name}:\n")
    end = PLAN.index("\n", start + len(name) + 2)
    while end + 1 < len(PLAN) and PLAN[end + 1] == " ":
        end = PLAN.index("\n", end + 1)
    return PLAN[:start] + f"{name}:\n{body}" + PLAN[end + 1 :]


def test_os_system_as_compression_pipeline_is_refused_when_the_plan_loads(make_workspace, tmp_path):
    marker = tmp_path / "pwned"
    plan = _with_section(
        "compression_pipeline", f"  template: os.system\n  settings:\n    command: touch {marker}\n"
    )
    with pytest.raises(PlanError) as refused:
        load(make_workspace(plan))
    message = str(refused.value)
    assert "compression_pipeline.template: expected a compression pipeline class" in message
    assert "os.system" in message and "\n" not in message
    assert not marker.exists()


# a workspace function in a section's place: importing it is harmless, calling it is not
EVIL = """
from pathlib import Path


def run(command):
    Path(command).touch()
"""


def test_a_workspace_function_is_refused_before_it_is_called(make_workspace, tmp_path):
    marker = tmp_path / "pwned"
    plan = _with_section(
        "compression_pipeline", f"  template: src.evil.run\n  settings:\n    command: {marker}\n"
    )
    loaded = load(make_workspace(plan, files={"src/evil.py": EVIL}))
    with pytest.raises(
        PlanError, match=r"compression_pipeline\.template: expected a compression pipeline class"
    ):
        loaded.check_templates()
    with pytest.raises(PlanError, match="a function, not a class"):
        loaded.build_compression_pipeline()  # where a collaborator builds it: refused there too
    assert not marker.exists()


def test_fx_plan_validate_refuses_os_system(make_workspace, tmp_path):
    from tests.conftest import run_fx

    marker = tmp_path / "pwned"
    plan = _with_section(
        "compression_pipeline", f"  template: os.system\n  settings:\n    command: touch {marker}\n"
    )
    root = make_workspace(plan)
    done = run_fx(["plan", "validate"], cwd=root, check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "compression_pipeline.template: expected a compression pipeline class" in done.stderr
    assert not marker.exists()


@pytest.mark.parametrize(
    ("section", "body", "kind"),
    [
        ("data_loader", "  template: subprocess.Popen\n  settings: {args: [id]}\n", "data loader"),
        ("task_runner", "  template: builtins.eval\n", "task runner"),
        ("assigner", "  template: collections.OrderedDict\n", "task assigner"),
        ("straggler_handling_policy", "  template: os.getcwd\n", "straggler handling policy"),
        ("data_loader", "  template: numpy.ndarray\n", "data loader"),
        ("assigner", "  template: openfl_cli.federation.straggler.WaitForAllPolicy\n", "task assigner"),
    ],
)
def test_each_section_wants_its_own_kind(make_workspace, section, body, kind):
    plan = _with_section(section, body) if f"{section}:" in PLAN else PLAN + f"{section}:\n{body}"
    with pytest.raises(PlanError, match=f"{section}.template: expected a {kind} class"):
        load(make_workspace(plan)).check_templates()


def test_an_aggregation_function_must_be_one(make_workspace):
    plan = PLAN + "  train:\n    aggregation_type:\n      template: shutil.rmtree\n"
    expected = r"tasks\.train\.aggregation_type\.template: expected an aggregation function class"
    with pytest.raises(PlanError, match=expected):
        load(make_workspace(plan)).check_templates()


def test_a_class_of_another_kind_is_refused(make_workspace):
    # a real fx class, in the wrong section: a data loader is no task runner
    plan = _with_section("task_runner", "  template: src.dataloader.TinyLoader\n")
    with pytest.raises(PlanError, match="without get_tensor_dict, set_tensor_dict, rebuild_model"):
        load(make_workspace(plan)).check_templates()


def test_a_class_written_without_fx_bases_is_accepted(make_workspace):
    policy = (
        "class Patient:\n"
        "    def round_open(self, expected, started_at): pass\n"
        "    def can_close(self, done, now): return True\n"
        "    def next_deadline(self, now): return None\n"
    )
    plan = PLAN + "straggler_handling_policy:\n  template: src.policy.Patient\n"
    loaded = load(make_workspace(plan, files={"src/policy.py": policy}))
    loaded.check_templates()
    assert type(loaded.build_straggler_policy()).__name__ == "Patient"


def test_every_section_built_from_a_template_has_a_kind():
    assert set(SECTION_KINDS) == {
        "data_loader",
        "task_runner",
        "assigner",
        "compression_pipeline",
        "straggler_handling_policy",
        "tasks",
    }


# --- did-you-mean --------------------------------------------------------------------------------


def test_a_misspelt_class_gets_a_did_you_mean_over_the_module(make_workspace):
    plan = _with_section("data_loader", "  template: src.dataloader.TinyLoadr\n  settings: {batch_size: 4}\n")
    with pytest.raises(PlanError, match=r"has no attribute 'TinyLoadr' \(did you mean 'TinyLoader'\?\)"):
        load(make_workspace(plan)).check_templates()


def test_a_misspelt_module_gets_a_did_you_mean_over_its_package(make_workspace):
    plan = _with_section("data_loader", "  template: src.dataloder.TinyLoader\n  settings: {batch_size: 4}\n")
    with pytest.raises(PlanError, match=r"did you mean 'src\.dataloader'\?"):
        load(make_workspace(plan)).check_templates()


def test_a_misspelt_fx_class_gets_a_did_you_mean(make_workspace):
    plan = PLAN + "  train:\n    aggregation_type: openfl_cli.federation.aggregation.WeightedAverag\n"
    with pytest.raises(PlanError, match=r"did you mean 'WeightedAverage'\?"):
        load(make_workspace(plan)).check_templates()


def test_a_misspelt_openfl_name_gets_a_did_you_mean_at_load(make_workspace):
    plan = PLAN + "straggler_handling_policy:\n  template: openfl.component.WaitForAllPolicyy\n"
    with pytest.raises(PlanError, match=r"did you mean 'openfl\.component\.WaitForAllPolicy'\?") as refused:
        load(make_workspace(plan))
    assert "straggler_handling_policy.template" in str(refused.value)
