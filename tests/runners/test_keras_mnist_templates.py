"""The keras/mnist and keras/jax/mnist templates train on a tiny MNIST written as IDX files."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.runners.helpers import ONE_THREAD, TEMPLATES, template_src, write_tiny_mnist

for _name, _value in ONE_THREAD.items():
    os.environ.setdefault(_name, _value)
keras = pytest.importorskip("keras")

pytestmark = pytest.mark.keras
REPO = Path(__file__).resolve().parents[2]


def test_keras_mnist_trains_and_saves(tmp_path: Path) -> None:
    write_tiny_mnist(tmp_path / "mnist", n_train=60, n_test=20)
    with template_src("keras/mnist"):
        from src.dataloader import KerasMNISTInMemory
        from src.taskrunner import KerasCNN

        shards = [KerasMNISTInMemory(str(i), 10, 2, mnist_folder=str(tmp_path / "mnist")) for i in (1, 2)]
        assert [s.get_train_data_size() for s in shards] == [30, 30]
        assert shards[0].get_feature_shape() == (28, 28, 1)
        runner = KerasCNN(shards[0])
        first = runner.train_task(0, metrics=["loss"]).metrics["loss"]
        for round_number in range(1, 4):
            last = runner.train_task(round_number, metrics=["loss"]).metrics["loss"]
        assert last < first
        assert runner.validate_task(3, metrics=["acc"]).sample_count == 10
        path = runner.save_native(tmp_path / "model.keras")
    x = shards[1].x_valid
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded.predict_on_batch(x), runner.model.predict_on_batch(x), rtol=1e-5)


JAX_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from src.dataloader import KerasMNISTInMemory
    from src.taskrunner import KerasCNN
    import keras

    loader = KerasMNISTInMemory("2", 10, 2, mnist_folder=sys.argv[1])
    runner = KerasCNN(loader)
    losses = [runner.train_task(r, metrics=["loss"]).metrics["loss"] for r in range(3)]
    path = runner.save_native(sys.argv[1] + "/model")
    loaded = keras.saving.load_model(path)
    same = np.allclose(loaded.predict_on_batch(loader.x_valid), runner.model.predict_on_batch(loader.x_valid))
    print(keras.backend.backend(), losses[-1] < losses[0], same, sorted(runner.get_tensor_dict())[:2])
    state = runner.get_tensor_dict(with_opt_vars=True)
    print("iteration", state["__opt__.iteration"].dtype, int(state["__opt__.iteration"]))
    """
)


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_keras_jax_mnist_runs_on_jax(tmp_path: Path) -> None:
    write_tiny_mnist(tmp_path, n_train=60, n_test=20)
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env.update(
        ONE_THREAD,
        FX_OFFLINE="1",
        PYTHONPATH=os.pathsep.join([str(TEMPLATES / "keras/jax/mnist"), str(REPO)]),
    )
    proc = subprocess.run(
        [sys.executable, "-c", JAX_SCRIPT, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr
    *_, trained, iteration = proc.stdout.strip().splitlines()
    assert trained == "jax True True ['0/bias', '0/kernel']"
    assert iteration == "iteration int64 9"  # int32 in JAX, int64 on the wire as from TensorFlow
