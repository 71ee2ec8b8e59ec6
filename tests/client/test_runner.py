"""ScriptTaskRunner driving a tiny NumPy script, in-process (a thread) and ex-process (a child)."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from openfl_cli.client.runner import ScriptDataLoader, ScriptError, ScriptTaskRunner
from openfl_cli.tensors.snapshot import save_snapshot
from tests.client import helpers
from tests.client.helpers import write_script

MODES = [pytest.param(False, id="in-process"), pytest.param(True, id="ex-process")]


def global_model() -> dict[str, np.ndarray]:
    return {
        "w": np.zeros((2, 3), dtype=np.float32),
        "b": np.arange(3, dtype=np.float64),
        "s": np.array(1.5, dtype=np.float32),  # 0-d
    }


@pytest.fixture
def made(tmp_path: Path) -> Iterator[list[ScriptTaskRunner]]:
    """Runners made by `runner()`; closed at the end of the test, whatever happens."""
    runners: list[ScriptTaskRunner] = []
    yield runners
    for runner in runners:
        runner.close()


def runner(
    made: list[ScriptTaskRunner], workspace: Path, site: str = "site-1", **settings: Any
) -> ScriptTaskRunner:
    settings.setdefault("framework", "numpy")
    settings.setdefault("close_timeout", 10.0)
    made.append(ScriptTaskRunner(ScriptDataLoader(site), workspace=workspace, **settings))
    return made[-1]


def train(runner: ScriptTaskRunner, model: dict[str, np.ndarray], round_number: int, **kwargs: Any):
    runner.rebuild_model(model)
    return runner.train_task(round_number, **kwargs)


@pytest.mark.parametrize("external", MODES)
def test_two_rounds_train_the_same_script(tmp_path: Path, made: list, external: bool) -> None:
    write_script(tmp_path / "src")
    one = runner(made, tmp_path, script="src/train.py", launch_external_process=external, total_rounds=2)
    base = global_model()
    first = train(one, base, 0)
    for name, array in base.items():
        got = first.weights[name]
        assert got.dtype == array.dtype and got.shape == array.shape
        np.testing.assert_allclose(got, array + 1)
    assert first.metrics == {"accuracy": 0.0, "rounds_seen": 1.0, "step": 1.0, "total": 2.0}
    assert first.sample_count == 10 and first.round_number == 0 and not first.optimizer_state
    assert one.data_loader.get_train_data_size() == 10  # type: ignore[union-attr]
    second = train(one, first.weights, 1)
    np.testing.assert_allclose(second.weights["w"], base["w"] + 2)
    assert second.metrics["rounds_seen"] == 2.0  # the same script, still running
    assert [(entry.round, entry.name, entry.value) for entry in one.logged] == [
        (0, "loss", 1.0),
        (1, "loss", 0.5),
    ]
    np.testing.assert_allclose(one.get_tensor_dict()["w"], base["w"] + 2)  # what it holds now
    np.testing.assert_array_equal(base["w"], np.zeros((2, 3)))  # the global model is untouched
    handle = one._driver._handle  # type: ignore[union-attr]
    one.close()
    assert handle is not None and not handle.alive()
    if external:
        assert handle._process.returncode == 0  # type: ignore[attr-defined]
    with pytest.raises(ScriptError, match="closed"):
        train(one, base, 2)


@pytest.mark.parametrize("external", MODES)
def test_a_diff_is_added_to_the_global_model(tmp_path: Path, made: list, external: bool) -> None:
    write_script(tmp_path)
    one = runner(
        made, tmp_path, script="train.py", script_args="--diff --step 0.5", launch_external_process=external
    )
    base = global_model()
    update = train(one, base, 0)
    for name, array in base.items():
        np.testing.assert_allclose(update.weights[name], array + 0.5)
        assert update.weights[name].dtype == array.dtype
    assert not update.is_delta  # full weights: the collaborator makes deltas itself when asked


def test_filters_run_in_order(tmp_path: Path, made: list) -> None:
    write_script(tmp_path)
    helpers.SEEN.clear()
    data = [
        {"template": "tests.client.helpers.Scale", "settings": {"factor": 2.0, "tag": "data-scale"}},
        {"template": "tests.client.helpers.Shift", "settings": {"amount": 1.0, "tag": "data-shift"}},
    ]
    result = [
        {"template": "tests.client.helpers.Scale", "settings": {"factor": 0.5, "tag": "result-scale"}},
        {"template": "tests.client.helpers.Shift", "settings": {"amount": 1.0, "tag": "result-shift"}},
    ]
    one = runner(made, tmp_path, script="train.py", task_data_filters=data, task_result_filters=result)
    base = {"w": np.ones(4, dtype=np.float32)}
    update = train(one, base, 0)
    # data: 1 * 2 + 1 = 3; the script: + 1 = 4; results: 4 * 0.5 + 1 = 3 (the other order gives 2.5)
    np.testing.assert_allclose(update.weights["w"], 3.0)
    assert helpers.SEEN == ["data-scale", "data-shift", "result-scale", "result-shift"]


@pytest.mark.parametrize(
    ("entries", "match"),
    [
        ([{"template": "tests.client.helpers.Nope"}], r"task_data_filters\[0\].*no attribute 'Nope'"),
        ([{"template": "tests.client.helpers.Scale", "settings": {"bad": 1}}], r"task_data_filters\[0\]"),
        ([{"template": "tests.client.helpers.Doubler"}], r"expected a class with a process\(\) method"),
        ([{"settings": {}}], "expected"),
        ("tests.client.helpers.Scale", "list"),
    ],
)
def test_bad_filter_entries_fail_when_the_runner_is_built(tmp_path: Path, entries: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ScriptTaskRunner(ScriptDataLoader("s"), script="x.py", task_data_filters=entries, workspace=tmp_path)


@pytest.mark.parametrize("setting", ["task_data_filters", "task_result_filters", "executor"])
def test_a_plan_entry_naming_a_function_is_refused_before_it_is_called(tmp_path: Path, setting: str) -> None:
    marker = tmp_path / "pwned"
    entry = {"template": "os.system", "settings": {"command": f"touch {marker}"}}
    given: dict[str, Any] = {"script": "x.py", setting: [entry]}
    if setting == "executor":
        given = {"executor": entry}
    with pytest.raises(ValueError, match=r"expected a class with a \w+\(\) method, got os\.system"):
        ScriptTaskRunner(ScriptDataLoader("s"), workspace=tmp_path, **given)
    assert not marker.exists()


def test_two_scripts_in_two_threads_see_their_own_arguments(tmp_path: Path, made: list) -> None:
    write_script(tmp_path)
    steps = {"site-1": 1.0, "site-2": 5.0}
    runners = {
        site: runner(made, tmp_path, site, script="train.py", script_args=f"--step {step}")
        for site, step in steps.items()
    }
    results: dict[str, list[float]] = {site: [] for site in steps}
    errors: list[BaseException] = []
    argv_before = list(sys.argv)

    def work(site: str) -> None:
        try:
            model = {"w": np.zeros(3, dtype=np.float32)}
            for round_number in range(5):
                update = train(runners[site], model, round_number)
                results[site].append(update.metrics["step"])
                model = update.weights
            results[site].append(float(model["w"][0]))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(site,)) for site in steps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert results == {site: [step] * 5 + [5 * step] for site, step in steps.items()}
    assert list(sys.argv) == argv_before  # other threads still see the process's arguments


@pytest.mark.parametrize("external", MODES)
def test_a_script_that_raises_names_itself_the_site_and_the_error(
    tmp_path: Path, made: list, external: bool
) -> None:
    write_script(tmp_path)
    one = runner(
        made,
        tmp_path,
        "site-3",
        script="train.py",
        script_args="--fail-in-round 1",
        launch_external_process=external,
    )
    model = train(one, global_model(), 0).weights
    with pytest.raises(ScriptError) as raised:
        train(one, model, 1)
    message = str(raised.value)
    assert "script train.py at site site-3 failed in round 2" in message
    assert "ValueError: disk on fire" in message and "line" in message
    assert "\n" not in message
    with pytest.raises(ScriptError, match="disk on fire"):  # it stays failed
        train(one, model, 2)


@pytest.mark.parametrize("external", MODES)
def test_a_script_that_ends_early_is_an_error(tmp_path: Path, made: list, external: bool) -> None:
    write_script(tmp_path, source="import openfl_cli.client as flare\nflare.init()\nflare.receive()\n")
    one = runner(made, tmp_path, script="train.py", launch_external_process=external)
    with pytest.raises(ScriptError, match="ended without sending a result"):
        train(one, global_model(), 0)


def test_an_ex_process_script_that_exits_reports_its_status(tmp_path: Path, made: list) -> None:
    write_script(tmp_path, source="import sys\nsys.exit(3)\n")
    one = runner(made, tmp_path, script="train.py", launch_external_process=True)
    with pytest.raises(ScriptError, match="exited with status 3"):
        train(one, global_model(), 0)


SILENT = """
import time
import openfl_cli.client as flare
flare.receive()
time.sleep(2.0)  # never answers, then ends
"""


@pytest.mark.parametrize("external", MODES)
def test_a_script_that_never_sends_times_out(tmp_path: Path, made: list, external: bool) -> None:
    write_script(tmp_path, source=SILENT)
    one = runner(made, tmp_path, script="train.py", launch_external_process=external, round_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(
        ScriptError, match=r"at site site-1: no result for round 1 within 0.5 s \(round_timeout\)"
    ):
        train(one, global_model(), 0)
    assert time.monotonic() - started < 5


HANGS_AT_THE_END = """
import time
import openfl_cli.client as flare
while flare.is_running():
    model = flare.receive()
    if model is None:
        break
    flare.send(flare.FLModel(params=model.params))
time.sleep(120)  # ignores the end of the job
"""


def test_close_kills_a_subprocess_that_hangs(
    tmp_path: Path, made: list, caplog: pytest.LogCaptureFixture
) -> None:
    write_script(tmp_path, source=HANGS_AT_THE_END)
    one = runner(made, tmp_path, script="train.py", launch_external_process=True, close_timeout=0.5)
    train(one, global_model(), 0)
    handle = one._driver._handle  # type: ignore[union-attr]
    assert handle is not None and handle.alive()
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        one.close()
    assert time.monotonic() - started < 8
    assert not handle.alive()
    assert "killed" in caplog.text


def test_close_ends_an_in_process_script(tmp_path: Path, made: list) -> None:
    write_script(tmp_path)
    one = runner(made, tmp_path, script="train.py")
    train(one, global_model(), 0)
    thread = one._driver._handle._thread  # type: ignore[union-attr]
    assert thread.is_alive()
    one.close()
    assert not thread.is_alive()
    one.close()  # twice is fine


def test_a_model_with_missing_or_extra_tensors_is_refused(tmp_path: Path, made: list) -> None:
    write_script(tmp_path)
    one = runner(made, tmp_path, script="train.py", script_args="--drop b")
    with pytest.raises(ScriptError, match=r"round 1: the model sent lacks \['b'\] tensors"):
        train(one, global_model(), 0)
    write_script(
        tmp_path,
        "extra.py",
        helpers.NUMPY_SCRIPT.replace("if args.drop:", "params['x'] = 1.0\n    if args.drop:"),
    )
    other = runner(made, tmp_path, script="extra.py")
    with pytest.raises(ScriptError, match=r"has unknown \['x'\] tensors"):
        train(other, global_model(), 0)


def test_evaluate_tasks_get_metrics(tmp_path: Path, made: list) -> None:
    write_script(tmp_path)
    one = runner(made, tmp_path, script="train.py")
    one.rebuild_model(global_model(), validation=True)
    result = one.validate_task(
        0, apply="global", metrics=["accuracy"], task_name="aggregated_model_validation"
    )
    assert result.metrics == {"accuracy": 0.5} and result.sample_count == 3 and not result.has_tensors
    with pytest.raises(KeyError, match="asked for metrics"):
        one.validate_task(0, metrics=["auc"])


def test_the_initial_model_and_paths_relative_to_the_workspace(tmp_path: Path, made: list) -> None:
    save_snapshot(tmp_path / "save/start.pbuf", global_model())
    write_script(tmp_path / "src")
    one = runner(made, tmp_path, script="src/train.py", initial_model="save/start.pbuf")
    tensors = one.get_tensor_dict(with_opt_vars=True)
    assert sorted(tensors) == ["b", "s", "w"]
    np.testing.assert_array_equal(tensors["b"], global_model()["b"])
    update = one.train_task(0)  # before any global model arrived: the initial one
    np.testing.assert_allclose(update.weights["b"], global_model()["b"] + 1)
    assert one.job_id == tmp_path.name


def test_a_missing_script_fails_on_first_use(tmp_path: Path, made: list) -> None:
    one = runner(made, tmp_path, script="gone.py")
    with pytest.raises(ScriptError, match="no such file"):
        train(one, global_model(), 0)


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({}, "script must name"),
        ({"script": "t.py", "framework": "jax"}, "framework"),
        ({"script": "t.py", "round_timeout": 0}, "round_timeout"),
        ({"script": "t.py", "command": ""}, "command"),
        ({"script": "t.py", "script_args": "'unbalanced"}, "script_args"),
        ({"script": "t.py", "total_rounds": 0}, "total_rounds"),
        ({"script": "t.py", "launch_external_process": "yes"}, "launch_external_process"),
        ({"script": "t.py", "sites": {"s": {"round_timeout": -1}}}, r"sites\.s: round_timeout"),
    ],
)
def test_bad_settings_are_refused(tmp_path: Path, settings: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ScriptTaskRunner(ScriptDataLoader("s"), workspace=tmp_path, **settings)


def test_a_site_gets_its_own_settings(tmp_path: Path, made: list) -> None:
    write_script(tmp_path)
    sites = {"site-2": {"script_args": "--step 4"}}
    first = runner(made, tmp_path, "site-1", script="train.py", sites=sites)
    second = runner(made, tmp_path, "site-2", script="train.py", sites=sites)
    assert train(first, global_model(), 0).metrics["step"] == 1.0
    assert train(second, global_model(), 0).metrics["step"] == 4.0


def test_an_executor_answers_in_place_of_a_script(tmp_path: Path, made: list) -> None:
    one = runner(
        made, tmp_path, executor={"template": "tests.client.helpers.Doubler", "settings": {"offset": 1}}
    )
    base = global_model()
    update = train(one, base, 2)
    np.testing.assert_allclose(update.weights["b"], base["b"] * 2 + 1)
    assert update.metrics == {"seen": 2.0} and update.sample_count == 1
