"""What a task's kwargs and metric names do in the framework-free runner base, and the hints and
quiet start that the framework runners get (no framework imported in this file's own process)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from openfl_cli.runners.base import TaskRunner
from openfl_cli.runners.frameworks import NOISE, install_hint
from tests.conftest import fx_env


class Fixed(TaskRunner):
    def get_tensor_dict(self, with_opt_vars: bool = False) -> dict[str, np.ndarray]:
        return {}

    def set_tensor_dict(self, tensors: Any, with_opt_vars: bool = False) -> None:
        pass

    def reset_opt_vars(self) -> None:
        pass

    def train_epoch(self, round_number: int, **kwargs: Any) -> dict[str, float]:
        return {"loss": 1.0}

    def validate_pass(self, round_number: int, **kwargs: Any) -> dict[str, float]:
        return {"acc": 0.75, "loss": 0.5}


def test_openfl_keras_metric_name_is_answered_by_an_acc_runner():
    result = Fixed().validate_task(0, metrics=["accuracy"], task_name="aggregated_model_validation")
    assert result.metrics == {"accuracy": 0.75}
    assert Fixed().validate_task(0, metrics=["acc", "loss"]).metrics == {"acc": 0.75, "loss": 0.5}


def test_a_metric_no_runner_reports_is_still_an_error():
    with pytest.raises(KeyError, match=r"asked for metrics \['dice'\]"):
        Fixed().validate_task(0, metrics=["dice"])


def test_only_loader_options_go_to_the_loader():
    kwargs = {"batch_size": 32, "apply": "global", "epochs": 1}
    assert TaskRunner.loader_options(kwargs) == {"batch_size": 32}
    assert TaskRunner.loader_options({"apply": "local"}) == {}


def test_a_loader_that_takes_no_batch_size_is_called_without_it():
    def strict() -> list[int]:
        return []

    def sized(batch_size: int | None = None) -> list[int]:
        return []

    def open_ended(**kwargs: Any) -> list[int]:
        return []

    kwargs = {"batch_size": 32, "apply": "global"}
    assert TaskRunner.loader_options(kwargs, strict) == {}
    assert TaskRunner.loader_options(kwargs, sized) == {"batch_size": 32}
    assert TaskRunner.loader_options(kwargs, open_ended) == {"batch_size": 32}


def test_install_hints_name_the_extra():
    assert "pip install 'openfl-cli[tensorflow]'" in install_hint("keras")
    assert "KERAS_BACKEND" in install_hint("keras")
    assert "pip install 'openfl-cli[tensorflow]'" in install_hint("tensorflow.python")
    assert install_hint("torch") == "; install it with: pip install 'openfl-cli[torch]'"
    assert install_hint("pandas") == "" and install_hint(None) == ""


def test_the_noise_pattern_keeps_real_errors():
    noise = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1.1 2636 cudart_stub.cc:31] Could not find cuda drivers on your machine",
        "E0000 00:00:1.2 3653 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error",
        "I tensorflow/core/util/port.cc:153] oneDNN custom operations are on. You may see ...",
    ]
    assert all(NOISE.search(line) for line in noise)
    assert not NOISE.search("Traceback (most recent call last):")
    assert not NOISE.search("ValueError: Input 0 of layer dense is incompatible")


_MISSING_KERAS = """
import sys
sys.modules["keras"] = None  # as if Keras were not installed
try:
    import openfl_cli.runners.keras
except ModuleNotFoundError as error:
    print(error)
"""


def test_a_missing_keras_names_the_extra_to_install():
    done = subprocess.run(
        [sys.executable, "-c", _MISSING_KERAS], env=fx_env(), capture_output=True, text=True, timeout=120
    )
    assert "pip install 'openfl-cli[tensorflow]'" in done.stdout, done.stdout + done.stderr
    assert "KERAS_BACKEND" in done.stdout


def test_a_workspace_module_missing_a_framework_names_the_extra(tmp_path, monkeypatch):
    from openfl_cli.plan.templates import TemplateError, import_object

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "__init__.py").write_text("")
    (tmp_path / "src" / "taskrunner.py").write_text("import keras\n")
    monkeypatch.setitem(sys.modules, "keras", None)
    try:
        with pytest.raises(TemplateError, match=r"keras.*pip install 'openfl-cli\[tensorflow\]'"):
            import_object("src.taskrunner.KerasCNN", tmp_path)
    finally:
        for name in [n for n in sys.modules if n == "src" or n.startswith("src.")]:
            del sys.modules[name]


# a CPU-only Keras step, the way a collaborator runs one (its runner module imported first)
_KERAS_STEP = """
import os
import openfl_cli.runners.keras as runner
import keras, numpy as np
model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
model.compile("adam", "mse")
model.train_on_batch(np.zeros((2, 3)), np.zeros((2, 2)))
print("LEVEL", os.environ["TF_CPP_MIN_LOG_LEVEL"])
"""


def _keras_step(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    pytest.importorskip("tensorflow")
    base = {k: v for k, v in fx_env().items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run(
        [sys.executable, "-c", _KERAS_STEP],
        env={**base, "KERAS_BACKEND": "tensorflow", "OMP_NUM_THREADS": "1", **env},
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.mark.keras
def test_tensorflow_start_up_noise_stays_out_of_a_cpu_run():
    done = _keras_step({})
    assert done.returncode == 0, done.stderr
    assert "LEVEL" in done.stdout
    for noise in ("cuInit", "cudart_stub", "absl::InitializeLog", "oneDNN"):
        assert noise not in done.stderr, done.stderr


@pytest.mark.keras
def test_the_users_log_level_is_left_alone():
    done = _keras_step({"TF_CPP_MIN_LOG_LEVEL": "1"})
    assert done.returncode == 0, done.stderr
    assert "LEVEL 1" in done.stdout
