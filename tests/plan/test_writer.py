"""Specs -> plan.yaml: a plan written from the specs of a plan loads back to the same specs and hash."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from openfl_cli.federation.specs import ComponentSpec
from openfl_cli.plan import Plan
from openfl_cli.plan.writer import write_plan
from openfl_cli.workspace.create import create_workspace


def load(workspace: Path) -> Plan:
    return Plan.load(workspace / "plan/plan.yaml", workspace / "plan/cols.yaml", workspace / "plan/data.yaml")


def rewritten(source: Path, target: Path) -> Plan:
    shutil.copytree(source / "src", target / "src")
    write_plan(load(source).experiment(), target)
    return load(target)


@pytest.mark.parametrize("template", ["numpy/digits", "torch/mnist", "keras/mnist", "torch/histology"])
def test_a_written_plan_has_the_hash_and_specs_of_its_source(tmp_path: Path, template: str) -> None:
    source = create_workspace(tmp_path / "source", template)
    original = load(source)
    again = rewritten(source, tmp_path / "copy")
    assert again.hash == original.hash
    expected = original.experiment()
    assert replace(again.experiment(), workspace=expected.workspace, source=expected.source) == expected
    text = (tmp_path / "copy/plan/plan.yaml").read_text()
    assert "defaults:" not in text  # fully resolved: the copy needs no defaults files


def test_collaborators_data_paths_and_task_settings_travel(make_workspace, tmp_path: Path) -> None:
    root = make_workspace()
    plan_file = root / "plan/plan.yaml"
    document = yaml.safe_load(plan_file.read_text())
    document["tasks"]["settings"] = {"timeout": 5}
    plan_file.write_text(yaml.safe_dump(document))
    (root / "plan/cols.yaml").write_text("collaborators: [one, two]\n")
    (root / "plan/data.yaml").write_text("one: a/1\ntwo: b/2\n")
    original = load(root)
    again = rewritten(root, tmp_path / "copy")
    assert again.collaborators == ["one", "two"]
    assert again.data_paths == {"one": "a/1", "two": "b/2"}
    assert again.config["tasks"]["settings"] == {"timeout": 5}
    assert again.hash == original.hash


def test_a_changed_spec_changes_the_written_plan(make_workspace, tmp_path: Path) -> None:
    root = make_workspace()
    spec = load(root).experiment()
    changed = replace(
        spec,
        aggregator=replace(spec.aggregator, rounds_to_train=7, collaborators=("x",)),
        task_runner=spec.task_runner.with_settings(hidden=5),
        data_paths={"x": "3"},
    )
    shutil.copytree(root / "src", tmp_path / "copy/src")
    write_plan(changed, tmp_path / "copy")
    again = load(tmp_path / "copy")
    assert again.aggregator_settings.rounds_to_train == 7
    assert again.config["task_runner"]["settings"]["hidden"] == 5
    assert again.collaborators == ["x"] and again.data_paths == {"x": "3"}
    assert again.hash != spec.plan_hash


def test_component_specs_check_what_they_hold() -> None:
    with pytest.raises(ValueError, match="task_runner: template must be a dotted path"):
        ComponentSpec(("task_runner",), "NoDots")
    with pytest.raises(ValueError, match="key"):
        ComponentSpec((), "a.B")
