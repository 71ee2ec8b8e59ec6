"""Experiment specs validate what they hold and give each collaborator its own spec."""

from __future__ import annotations

from pathlib import Path

import pytest

from openfl_cli.federation.specs import (
    AggregatorSpec,
    BestModelSpec,
    ComponentSpec,
    ExperimentSpec,
    NetworkSpec,
    OutputsSpec,
)
from openfl_cli.transport.messages import TaskSpec

TASKS = {
    "validate": TaskSpec("validate", "validate_task", {"apply": "global"}),
    "train": TaskSpec("train", "train_task", {"epochs": 1}),
}
ASSIGNER = ComponentSpec(("assigner",), "openfl_cli.federation.assigner.RandomGroupedAssigner")
STRAGGLER = ComponentSpec(("straggler_handling_policy",), "openfl_cli.federation.straggler.WaitForAllPolicy")


def aggregator(**changes: object) -> AggregatorSpec:
    fields: dict = {
        "plan_hash": "ab" * 48,
        "collaborators": ["one", "two"],
        "rounds_to_train": 2,
        "tasks": TASKS,
        "aggregation": {},
        "assigner": ASSIGNER,
        "straggler": STRAGGLER,
        **changes,
    }
    return AggregatorSpec(**fields)


def test_an_experiment_gives_each_collaborator_its_spec(tmp_path: Path) -> None:
    spec = ExperimentSpec(
        workspace=tmp_path,
        aggregator=aggregator(opt_treatment="CONTINUE_GLOBAL", use_delta_updates=True),
        network=NetworkSpec("localhost", 50000),
        data_loader=ComponentSpec(("data_loader",), "src.loader.L", {"batch_size": 4}),
        task_runner=ComponentSpec(("task_runner",), "src.runner.R"),
        data_paths={"one": "1", "two": "2"},
    )
    one = spec.collaborator("one")
    assert (one.name, one.data_path, one.plan_hash) == ("one", "1", spec.plan_hash)
    assert one.training_task == TASKS["train"]
    assert one.opt_treatment == "CONTINUE_GLOBAL" and one.use_delta_updates
    assert spec.collaborator("three", data_path="7").data_path == "7"
    with pytest.raises(KeyError):
        spec.collaborator("three")
    assert spec.collaborators == ("one", "two")
    assert spec.resolve("save/x.pbuf") == tmp_path / "save/x.pbuf"
    assert spec.resolve("/abs/x") == Path("/abs/x")


def test_the_best_task_judges_the_start_model_when_it_validates_globally() -> None:
    assert aggregator(outputs=OutputsSpec(best=BestModelSpec("validate"))).best_task_judges_start_model
    assert not aggregator(outputs=OutputsSpec(best=BestModelSpec("train"))).best_task_judges_start_model


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"rounds_to_train": 0}, "rounds_to_train must be an integer >= 1"),
        ({"rounds_to_train": True}, "rounds_to_train"),
        ({"collaborators": ["one", "one"]}, "duplicate collaborators"),
        ({"opt_treatment": "KEEP"}, "opt_treatment must be one of"),
        ({"aggregation": {"nope": ASSIGNER}}, "tasks that do not exist"),
    ],
)
def test_bad_aggregator_specs_are_refused(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        aggregator(**changes)


def test_bad_network_and_outputs_are_refused() -> None:
    with pytest.raises(ValueError, match="reconnect_interval"):
        NetworkSpec("h", 1, reconnect_interval=0)
    with pytest.raises(ValueError, match="db_store_rounds"):
        OutputsSpec(db_store_rounds=0)
    assert not NetworkSpec("auto", "auto").resolved and NetworkSpec("h", 1).resolved
