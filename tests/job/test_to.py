"""`job.to()`: ids and references, and how each kind of object is handled."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from openfl_cli.errors import UsageError
from openfl_cli.job import (
    ALL_SITES,
    ExcludeVars,
    Executor,
    FedAvg,
    FedJob,
    FilterType,
    PercentilePrivacy,
    ScriptRunner,
)
from openfl_cli.job.ids import snake_case
from openfl_cli.job.job import JobCtx


class Component:
    def __init__(self, size: int = 1) -> None:
        self.size = size


class Holder:
    def __init__(self, child_id: str, others: list[str] | None = None) -> None:
        self.child_id = child_id
        self.others = others or []


class TrainExecutor(Executor):
    def __init__(self, lr: float = 0.1) -> None:
        self.lr = lr

    def execute(self, task_name: str, model: Any, site_name: str) -> Any:
        return model


class Bundle:
    """An object that decides how it is added, through the developer API."""

    def __init__(self, resource: str) -> None:
        self.resource = resource
        self.seen: dict[str, Any] = {}

    def add_to_fed_job(self, job: FedJob, ctx: JobCtx, **kwargs: Any) -> dict[str, str]:
        job.check_kwargs(kwargs, {"label": True, "tasks": False})
        self.seen = {"target": ctx.target, "obj": ctx.obj, **kwargs}
        job.add_resources([self.resource], ctx)
        comp = job.add_component("bundle_part", Component(3), ctx)
        executor = job.add_executor(TrainExecutor(0.5), kwargs.get("tasks"), ctx)
        data_filter = job.add_filter(ExcludeVars(["w"]), FilterType.TASK_DATA, None, ctx)
        return {"component": comp, "executor": executor, "filter": data_filter}


def components(job: FedJob, target: str) -> dict[str, Any]:
    return {key: entry.obj for key, entry in job.apps[target].components.items()}


# --- ids ----------------------------------------------------------------------------------------
def test_ids_come_from_the_type_name_and_are_incremented_when_taken() -> None:
    job = FedJob("ids")
    first, second, third = Component(), Component(), Component()
    assert job.to_server(first) == "component"
    assert job.to_server(second) == "component1"
    assert job.to_server(third, id="component") == "component2"
    assert job.to_server(first) == "component"  # the same object keeps its id
    assert job.to_server(Component(), id="mine") == "mine"
    assert snake_case("IntimeModelSelector") == "intime_model_selector"
    assert snake_case("HTTPClient") == "http_client"


def test_the_clients_share_one_id_namespace_and_the_server_has_its_own() -> None:
    job = FedJob("ids")
    assert job.to_server(Component()) == "component"
    assert job.to(Component(), "site-1") == "component"
    assert job.to(Component(), "site-2") == "component1"
    shared = Component()
    assert job.to_clients(shared) == "component2"
    assert job.to(shared, "site-1") == "component2"


def test_invalid_ids_and_targets_are_refused() -> None:
    job = FedJob("ids")
    with pytest.raises(UsageError, match="invalid component id"):
        job.to_server(Component(), id="has space")
    with pytest.raises(UsageError, match="expected 'server' or a site name"):
        job.to(Component(), "../etc")
    with pytest.raises(UsageError, match="unexpected argument"):
        job.to_server(Component(), colour="red")


def test_as_id_adds_the_referenced_object_when_another_refers_to_it() -> None:
    job = FedJob("refs")
    child = Component(7)
    reference = job.as_id(child)
    assert job.as_id(child) == reference
    assert job.to_server(Holder(child_id=reference)) == "holder"
    held = components(job, "server")
    assert held["component"] is child
    assert job.apps["server"].components["holder"].settings == {"child_id": "component", "others": []}
    assert job.apps["server"].components["component"].settings == {"size": 7}


def test_references_inside_lists_and_to_objects_already_added() -> None:
    job = FedJob("refs")
    one, two = Component(1), Component(2)
    assert job.to(one, "site-1") == "component"
    holder = Holder(job.as_id(one), others=[job.as_id(two)])
    job.to(holder, "site-1")
    assert job.apps["site-1"].components["holder"].settings == {
        "child_id": "component",
        "others": ["component1"],
    }
    # a site sees the components of all clients
    common = Component(5)
    job.to_clients(common)
    job.to(Holder(job.as_id(common)), "site-1")
    assert job.apps["site-1"].components["holder1"].settings["child_id"] == "component2"
    assert "component2" not in job.apps["site-1"].components


def test_a_reference_to_an_unknown_id_is_an_error_and_leaves_the_job_unchanged() -> None:
    job = FedJob("refs")
    other = FedJob("other")
    foreign = other.as_id(Component())
    with pytest.raises(UsageError, match="not by this job's"):
        job.to_server(Holder(child_id=foreign))
    assert "server" not in job.apps or not job.apps["server"].components
    assert job.to_server(Component()) == "component"  # no id was taken by the refused object


def test_plain_strings_are_never_taken_for_references() -> None:
    job = FedJob("refs")
    run_id = str(uuid.uuid4())
    job.to_server(Holder(child_id=run_id, others=["component", "as_id"]))
    assert job.apps["server"].components["holder"].settings == {
        "child_id": run_id,
        "others": ["component", "as_id"],
    }


def test_references_that_cycle_resolve() -> None:
    job = FedJob("refs")
    a = Holder(child_id="")
    b = Holder(child_id=job.as_id(a))
    a.child_id = job.as_id(b)
    job.to_server(a)
    settings = {key: entry.settings for key, entry in job.apps["server"].components.items()}
    assert settings == {
        "holder": {"child_id": "holder1", "others": []},
        "holder1": {"child_id": "holder", "others": []},
    }


# --- object kinds -------------------------------------------------------------------------------
def test_a_controller_is_the_servers_workflow() -> None:
    job = FedJob("c")
    controller = FedAvg(num_clients=2, num_rounds=3)
    assert job.to_server(controller) == "fed_avg"
    assert job.controller is controller
    assert job.to_server(controller) == "fed_avg"
    with pytest.raises(UsageError, match="one workflow"):
        job.to_server(FedAvg(num_clients=2, num_rounds=1))
    with pytest.raises(UsageError, match="send it to the server"):
        job.to(FedAvg(), "site-1")


def test_an_executor_goes_to_a_client_for_the_given_tasks() -> None:
    job = FedJob("e")
    executor = TrainExecutor(lr=0.01)
    assert job.to(executor, "site-1", tasks=["train"]) == "train_executor"
    handler = job.apps["site-1"].handler
    assert handler is not None and handler.obj is executor
    assert handler.settings == {
        "executor": {"template": "src.test_to.TrainExecutor", "settings": {"lr": 0.01}}
    }
    assert handler.shipped == Path(__file__).resolve()
    with pytest.raises(UsageError, match="already runs TrainExecutor"):
        job.to(TrainExecutor(), "site-1")
    with pytest.raises(UsageError, match="unknown task"):
        job.to(TrainExecutor(), "site-2", tasks=["validate"])
    with pytest.raises(UsageError, match="runs on clients"):
        job.to_server(TrainExecutor())
    assert job.to(TrainExecutor(), "site-3", tasks=["*"]) == "train_executor1"


def test_a_script_runner_goes_to_clients_and_ships_its_script(script: Path) -> None:
    job = FedJob("s")
    runner = ScriptRunner(script=str(script), script_args="--lr 0.1", launch_external_process=True)
    assert job.to_clients(runner) == "script_runner"
    app = job.apps[ALL_SITES]
    assert app.resources == [script]
    assert app.handler is not None and app.handler.settings == {
        "script": "src/train.py",
        "script_args": "--lr 0.1",
        "launch_external_process": True,
        "command": "python3 -u",
        "framework": "pytorch",
    }
    with pytest.raises(UsageError, match="not found"):
        job.to(ScriptRunner(script=str(script.parent / "missing.py")), "site-1")
    with pytest.raises(UsageError, match="a script runs on clients"):
        job.to_server(ScriptRunner(script=str(script)))
    with pytest.raises(ValueError, match="framework"):
        ScriptRunner(script=str(script), framework="cobol")


def test_strings_are_resources_files_or_folders(tmp_path: Path) -> None:
    job = FedJob("r")
    file = tmp_path / "net.py"
    file.write_text("X = 1\n")
    folder = tmp_path / "pkg"
    folder.mkdir()
    assert job.to(str(file), "site-1") is None
    job.to(str(folder), "site-1")
    job.to(str(file), "site-1")  # once only
    assert job.apps["site-1"].resources == [file, folder]
    with pytest.raises(UsageError, match="not found"):
        job.to(str(tmp_path / "nothing"), "site-1")


def test_a_filter_needs_its_filter_type() -> None:
    job = FedJob("f")
    with pytest.raises(UsageError, match="needs filter_type"):
        job.to_clients(ExcludeVars(["a"]))
    with pytest.raises(UsageError, match="filter_type must be"):
        job.to_clients(ExcludeVars(["a"]), filter_type="sideways")
    with pytest.raises(UsageError, match="cannot be a task_data filter"):
        job.to_clients(PercentilePrivacy(), filter_type=FilterType.TASK_DATA)
    with pytest.raises(UsageError, match="filters run on the clients"):
        job.to_server(ExcludeVars(["a"]), filter_type=FilterType.TASK_DATA)
    exclude = ExcludeVars("bias$")
    assert job.to_clients(exclude, filter_type=FilterType.TASK_RESULT, tasks=["train"]) == "exclude_vars"
    assert job.to_clients(exclude, filter_type="task_data") == "exclude_vars"  # the same object, both ways
    assert job.apps[ALL_SITES].filter_entries("task_result") == [
        {
            "template": "openfl_cli.job.filters.ExcludeVars",
            "settings": {"exclude_vars": "bias$", "filter_type": "task_result"},
        }
    ]
    assert job.apps[ALL_SITES].filter_entries("task_data")[0]["settings"]["filter_type"] == "task_data"


def test_objects_with_add_to_fed_job_use_the_developer_api(tmp_path: Path) -> None:
    job = FedJob("d")
    resource = tmp_path / "helper.py"
    resource.write_text("")
    bundle = Bundle(str(resource))
    ids = job.to(bundle, "site-1", label="x", tasks=["train"])
    assert ids == {"component": "bundle_part", "executor": "train_executor", "filter": "exclude_vars"}
    assert bundle.seen == {"target": "site-1", "obj": bundle, "label": "x", "tasks": ["train"]}
    app = job.apps["site-1"]
    assert app.resources == [resource] and "bundle_part" in app.components
    with pytest.raises(UsageError, match="missing required argument"):
        job.to(Bundle(str(resource)), "site-2")
    assert "site-2" not in job.apps or job.apps["site-2"].handler is None  # nothing half-added


def test_set_up_client_is_called_once_per_client_target(script: Path) -> None:
    class Pattern(FedJob):
        def __init__(self) -> None:
            super().__init__("pattern")
            self.targets: list[str] = []

        def set_up_client(self, target: str) -> None:
            self.targets.append(target)
            self.to(Component(9), target, id="standard")

    job = Pattern()
    job.to_clients(ScriptRunner(script=str(script)))
    job.to(Component(), "site-1")
    job.to(Component(), "site-1")
    job.to_server(Component())
    assert job.targets == [ALL_SITES, "site-1"]
    assert "standard" in job.apps[ALL_SITES].components and "standard1" in job.apps["site-1"].components


def test_job_arguments_are_checked() -> None:
    with pytest.raises(UsageError, match="invalid job name"):
        FedJob("a/b")
    with pytest.raises(UsageError, match="min_clients"):
        FedJob("a", min_clients=0)
    with pytest.raises(UsageError, match="invalid collaborator name"):
        FedJob("a", mandatory_clients=["site 1"])
    with pytest.raises(ValueError, match="num_rounds"):
        FedAvg(num_clients=1, num_rounds=0)
