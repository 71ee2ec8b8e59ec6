"""`export_job`: the workspace's files, a plan that loads back to the same spec, meta.json, and
publishing by rename."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from openfl_cli.errors import UsageError
from openfl_cli.federation.specs import ExperimentSpec
from openfl_cli.job import (
    ExcludeVars,
    Executor,
    FedAvg,
    FedJob,
    FilterType,
    IntimeModelSelector,
    PercentilePrivacy,
    ScriptRunner,
)
from openfl_cli.job.content import export_content
from openfl_cli.job.straggler import MandatorySitesPolicy
from openfl_cli.plan import Plan
from openfl_cli.tensors.snapshot import load_snapshot
from tests.job.conftest import ArrayModel, make_job, weights


class SiteExecutor(Executor):
    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale

    def execute(self, task_name: str, model: Any, site_name: str) -> Any:
        return model


class Recorder:
    def __init__(self, folder: str = "runs") -> None:
        self.folder = folder


def files_under(root: Path) -> set[str]:
    return {path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file()}


def load_back(root: Path) -> Plan:
    plan = root / "plan"
    return Plan.load(plan / "plan.yaml", plan / "cols.yaml", plan / "data.yaml")


def normalized(spec: ExperimentSpec) -> ExperimentSpec:
    """A spec without what naturally differs between the built and the loaded one (the hash, paths)."""
    return replace(
        spec,
        workspace=Path("."),
        source="",
        aggregator=replace(spec.aggregator, plan_hash=""),
    )


def full_job(script: Path, tmp_path: Path) -> FedJob:
    job = make_job(script, name="full", min_clients=2, mandatory_clients=["site-1"])
    job.to_server(IntimeModelSelector(key_metric="loss", negate_key_metric=True))
    job.to_clients(ExcludeVars(["b"]), filter_type=FilterType.TASK_DATA)
    job.to_clients(PercentilePrivacy(percentile=10, gamma=0.01), filter_type=FilterType.TASK_RESULT)
    content = tmp_path / "content"
    (content / "sub").mkdir(parents=True)
    (content / "helpers.py").write_text("H = 1\n")
    (content / "sub" / "table.csv").write_text("a,b\n")
    (content / "__pycache__").mkdir()
    (content / "__pycache__" / "helpers.cpython-312.pyc").write_bytes(b"\0")
    job.to_clients(str(content))
    job.requirements = ["torch>=2.3", "  "]
    return job


def test_the_export_is_a_complete_workspace(script: Path, tmp_path: Path) -> None:
    job = full_job(script, tmp_path)
    root = job.export_job(tmp_path / "jobs")
    assert root == tmp_path / "jobs" / "full"
    assert files_under(root) == {
        "plan/plan.yaml",
        "plan/cols.yaml",
        "plan/data.yaml",
        "src/__init__.py",
        "src/train.py",
        "src/helpers.py",
        "src/sub/table.csv",
        "save/init.pbuf",
        "requirements.txt",
        "meta.json",
    }
    for folder in ("logs", "data", "cert", "local_state"):
        assert (root / folder).is_dir()
    assert (root / "src" / "train.py").read_text() == script.read_text()
    assert (root / "requirements.txt").read_text() == "torch>=2.3\n"
    snapshot = load_snapshot(root / "save" / "init.pbuf")
    assert snapshot.round_number == 0 and sorted(snapshot.tensors) == sorted(weights())
    np.testing.assert_array_equal(snapshot.tensors["w"], weights()["w"])
    assert [p.name for p in (tmp_path / "jobs").iterdir()] == ["full"]  # no staging folder left
    assert yaml.safe_load((root / "plan" / "cols.yaml").read_text()) == {
        "collaborators": ["site-1", "site-2"]
    }
    assert yaml.safe_load((root / "plan" / "data.yaml").read_text()) == {
        "site-1": "site-1",
        "site-2": "site-2",
    }


def test_the_plan_loads_back_to_the_same_spec(script: Path, tmp_path: Path) -> None:
    job = full_job(script, tmp_path)
    root = job.export_job(tmp_path / "jobs")
    built = export_content(job, root).spec
    loaded = load_back(root).experiment()
    assert normalized(loaded) == normalized(built)
    assert loaded.workspace == root.resolve()
    agg = loaded.aggregator
    assert agg.rounds_to_train == 2 and agg.collaborators == ("site-1", "site-2")
    assert list(agg.tasks) == ["train"] and agg.aggregation == {}
    assert agg.outputs.best.task == "train" and agg.outputs.best.metric == "loss"
    assert agg.outputs.best.higher_is_better is False
    assert agg.straggler.template.endswith("WaitForAllPolicy")
    assert loaded.network.agg_addr == "auto" and loaded.network.agg_port == "auto"
    assert loaded.data_loader.template == "openfl_cli.client.runner.ScriptDataLoader"
    runner = loaded.task_runner
    assert runner.template == "openfl_cli.client.runner.ScriptTaskRunner"
    assert runner.settings == {
        "script": "src/train.py",
        "script_args": "--epochs 1",
        "launch_external_process": False,
        "command": "python3 -u",
        "framework": "pytorch",
        "initial_model": "save/init.pbuf",
        "task_data_filters": [
            {
                "template": "openfl_cli.job.filters.ExcludeVars",
                "settings": {"exclude_vars": ["b"], "filter_type": "task_data"},
            }
        ],
        "task_result_filters": [
            {
                "template": "openfl_cli.job.filters.PercentilePrivacy",
                "settings": {"percentile": 10, "gamma": 0.01},
            }
        ],
        "total_rounds": 2,
    }
    assert agg.tasks["train"].kwargs == {"metrics_judge": "received_model"}
    assert agg.best_task_judges_start_model  # the script scores the model it received
    plan = load_back(root)
    assigner = plan.build_assigner()
    assigner.bind(list(plan.collaborators))
    assert assigner.tasks_for("site-2", 0) == ["train"]


def test_meta_json_has_the_name_clients_and_deploy_map(script: Path, tmp_path: Path) -> None:
    root = full_job(script, tmp_path).export_job(tmp_path / "jobs")
    meta = json.loads((root / "meta.json").read_text())
    assert meta["name"] == "full"
    assert meta["min_clients"] == 2 and meta["mandatory_clients"] == ["site-1"]
    assert meta["deploy_map"] == {"app_server": ["server"], "app": ["@ALL"]}
    assert meta["app_files"] == {"app": ["src/train.py", "src/helpers.py", "src/sub/table.csv"]}
    assert meta["sites"] == ["site-1", "site-2"]


def test_site_specific_objects_override_the_common_settings(script: Path, tmp_path: Path) -> None:
    other = tmp_path / "code" / "special.py"
    other.write_text("print('special')\n")
    job = make_job(script, name="sites", n_clients=3)
    job.to_clients(ExcludeVars("bias"), filter_type=FilterType.TASK_RESULT)
    job.to(ScriptRunner(script=str(other), script_args="--fast", framework="numpy"), "site-2")
    job.to(PercentilePrivacy(gamma=0.5), "site-2", filter_type=FilterType.TASK_RESULT)
    job.to(SiteExecutor(scale=2.0), "site-4")
    job.to(Recorder("logs/x"), "site-4")
    root = job.export_job(tmp_path / "jobs", n_clients=2)  # site-1, site-2, then the named site-4
    settings = load_back(root).experiment().task_runner.settings
    exclude = {
        "template": "openfl_cli.job.filters.ExcludeVars",
        "settings": {"exclude_vars": "bias", "filter_type": "task_result"},
    }
    assert settings["script"] == "src/train.py" and settings["task_result_filters"] == [exclude]
    assert settings["sites"] == {
        "site-2": {
            "script": "src/special.py",
            "executor": None,
            "script_args": "--fast",
            "launch_external_process": False,
            "command": "python3 -u",
            "framework": "numpy",
            "task_result_filters": [
                exclude,
                {
                    "template": "openfl_cli.job.filters.PercentilePrivacy",
                    "settings": {"percentile": 10, "gamma": 0.5},
                },
            ],
        },
        "site-4": {
            "script": None,
            "executor": {"template": "src.test_export.SiteExecutor", "settings": {"scale": 2.0}},
            "components": {
                "recorder": {"template": "src.test_export.Recorder", "settings": {"folder": "logs/x"}}
            },
        },
    }
    assert load_back(root).collaborators == ["site-1", "site-2", "site-4"]
    meta = json.loads((root / "meta.json").read_text())
    assert meta["deploy_map"] == {
        "app_server": ["server"],
        "app": ["@ALL"],
        "app_site-2": ["site-2"],
        "app_site-4": ["site-4"],
    }
    assert meta["app_files"] == {
        "app": ["src/train.py"],
        "app_site-2": ["src/special.py"],
        "app_site-4": ["src/test_export.py"],
    }
    assert (root / "src" / "test_export.py").read_text() == Path(__file__).read_text()


def test_a_job_without_to_clients_exports_each_sites_own_runner(script: Path, tmp_path: Path) -> None:
    job = FedJob("per_site")
    job.to_server(FedAvg(num_clients=2, num_rounds=1))
    job.to_server(ArrayModel(weights()))
    for index in (1, 2):
        job.to(ScriptRunner(str(script), script_args=f"--data /data/site-{index}"), f"site-{index}")
    settings = load_back(job.export_job(tmp_path)).experiment().task_runner.settings
    assert "script" not in settings
    assert settings["sites"]["site-2"]["script_args"] == "--data /data/site-2"
    assert json.loads((tmp_path / "per_site" / "meta.json").read_text())["deploy_map"] == {
        "app_server": ["server"],
        "app_site-1": ["site-1"],
        "app_site-2": ["site-2"],
    }


def test_a_straggler_cutoff_time_maps_min_and_mandatory_clients_onto_straggler_policies(
    script: Path, tmp_path: Path
) -> None:
    job = FedJob("timeout", min_clients=2)
    job.to_server(FedAvg(num_clients=3, num_rounds=1, straggler_cutoff_time=30))
    job.to_server(ArrayModel(weights()))
    job.to_clients(ScriptRunner(str(script)))
    policy = load_back(job.export_job(tmp_path, n_clients=3)).build_straggler_policy()
    assert type(policy).__name__ == "CutoffTimePolicy"
    assert (policy.straggler_cutoff_time, policy.minimum_reporting) == (30.0, 2)  # type: ignore[attr-defined]

    job = FedJob("mandatory", min_clients=1, mandatory_clients=["site-3"])
    job.to_server(FedAvg(num_clients=3, num_rounds=1, straggler_cutoff_time=30))
    job.to_server(ArrayModel(weights()))
    job.to_clients(ScriptRunner(str(script)))
    policy = load_back(job.export_job(tmp_path, n_clients=3)).build_straggler_policy()
    assert isinstance(policy, MandatorySitesPolicy) and policy.mandatory_sites == {"site-3"}
    policy.round_open(["site-1", "site-2", "site-3"], started_at=0.0)
    assert not policy.can_close(["site-1", "site-2"], now=100.0)  # past the cutoff, site-3 missing
    assert policy.can_close(["site-3"], now=100.0)
    assert not policy.can_close(["site-3"], now=10.0)  # before the cutoff: all of them


def test_server_components_are_recorded_in_meta_json_with_a_warning(
    script: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    job = make_job(script)
    job.to_server(Recorder())
    with caplog.at_level(logging.WARNING, logger="openfl_cli.job.content"):
        root = job.export_job(tmp_path)
    assert "recorder" in caplog.text
    meta = json.loads((root / "meta.json").read_text())
    assert meta["server_components"] == {
        "recorder": {"template": "src.test_export.Recorder", "settings": {"folder": "runs"}}
    }
    assert meta["app_files"]["app_server"] == ["src/test_export.py"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda job, s: job.__init__("bare"), "no controller"),
        (lambda job, s: job.apps["server"].__setattr__("initial_model", None), "no initial model"),
        (lambda job, s: job.mandatory_clients.append("site-9"), "mandatory client.*site-9"),
        (lambda job, s: setattr(job, "min_clients", 3), "min_clients is 3 but the job has 2"),
        (
            lambda job, s: job.to(SiteExecutor(), "site-7"),
            r"FedAvg\(num_clients=2\): the job has 1 client \(site-7\)",
        ),
    ],
)
def test_jobs_that_cannot_run_are_refused(script: Path, tmp_path: Path, change: Any, message: str) -> None:
    job = make_job(script)
    change(job, script)
    with pytest.raises(UsageError, match=message):
        job.export_job(tmp_path / "jobs")
    assert not (tmp_path / "jobs").exists()


def test_a_site_with_nothing_to_run_and_clashing_files_are_refused(script: Path, tmp_path: Path) -> None:
    job = FedJob("nothing")
    job.to_server(FedAvg(num_clients=2, num_rounds=1))
    job.to_server(ArrayModel(weights()))
    job.to(ScriptRunner(str(script)), "site-1")
    job.to(Recorder(), "site-2")
    with pytest.raises(UsageError, match="site-2 has nothing to run"):
        job.export_job(tmp_path)
    clash = tmp_path / "other" / "train.py"
    clash.parent.mkdir()
    clash.write_text("print('another')\n")
    job.to(ScriptRunner(str(clash)), "site-2")
    with pytest.raises(UsageError, match=r"two different files would be shipped as src/train\.py"):
        job.export_job(tmp_path)


def test_an_existing_folder_that_is_not_an_export_is_never_overwritten(script: Path, tmp_path: Path) -> None:
    precious = tmp_path / "demo"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(UsageError, match="not an export of job 'demo'"):
        make_job(script).export_job(tmp_path)
    assert files_under(precious) == {"notes.txt"}
    (precious / "meta.json").write_text(json.dumps({"name": "another"}))
    with pytest.raises(UsageError, match="not an export"):
        make_job(script).export_job(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["code", "demo"]


def test_an_earlier_export_of_the_job_is_replaced_and_an_empty_folder_used(
    script: Path, tmp_path: Path
) -> None:
    (tmp_path / "jobs" / "demo").mkdir(parents=True)  # empty: fine
    root = make_job(script).export_job(tmp_path / "jobs")
    (root / "save" / "last.pbuf").write_bytes(b"old run")
    again = make_job(script, rounds=5).export_job(tmp_path / "jobs")
    assert again == root and not (root / "save" / "last.pbuf").exists()
    assert load_back(root).experiment().aggregator.rounds_to_train == 5
    assert [p.name for p in (tmp_path / "jobs").iterdir()] == ["demo"]


def test_a_failing_export_leaves_no_half_folder(
    script: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import openfl_cli.tensors.snapshot as snapshot

    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(snapshot, "save_snapshot", broken)
    with pytest.raises(OSError, match="disk full"):
        make_job(script).export_job(tmp_path / "jobs")
    assert list((tmp_path / "jobs").iterdir()) == []
    # and a failure while replacing an earlier export keeps the earlier one
    monkeypatch.undo()
    root = make_job(script).export_job(tmp_path / "jobs")
    monkeypatch.setattr(snapshot, "save_snapshot", broken)
    with pytest.raises(OSError):
        make_job(script, rounds=7).export_job(tmp_path / "jobs")
    assert load_back(root).experiment().aggregator.rounds_to_train == 2
    assert [p.name for p in (tmp_path / "jobs").iterdir()] == ["demo"]
