"""torch/histology, keras/histology and tf_cnn_histology train on tiny tile sets in Kather 2016's layout.

The reader itself (openfl_cli.data.histology) is tested in tests/data/test_histology.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tests.runners.helpers import ONE_THREAD, template_src, write_tiny_histology

pytest.importorskip("PIL")


@pytest.mark.torch
def test_torch_histology_trains(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    write_tiny_histology(tmp_path)
    with template_src("torch/histology"):
        from src.dataloader import PyTorchHistology
        from src.taskrunner import PyTorchHistologyCNN

        loader = PyTorchHistology("1", 8, 1, histology_folder=str(tmp_path), image_size=32)
        runner = PyTorchHistologyCNN(loader, learning_rate=0.01)
        losses = [runner.train_task(r, metrics=["loss"]).metrics["loss"] for r in range(4)]
        assert losses[-1] < losses[0]
        assert runner.validate_task(3, metrics=["acc"]).sample_count == loader.get_valid_data_size() == 5
        x, _y = next(iter(loader.get_train_loader()))
        assert x.shape == (8, 3, 32, 32) and float(x.max()) <= 1.0


@pytest.mark.keras
@pytest.mark.parametrize(
    ("template", "loader_name", "runner_name"),
    [
        ("keras/histology", "KerasHistology", "KerasHistologyCNN"),
        ("tf_cnn_histology", "TensorFlowHistologyInMemory", "TensorFlowCNN"),
    ],
)
def test_keras_histology_templates_train_and_save(
    tmp_path: Path, template: str, loader_name: str, runner_name: str
) -> None:
    for name, value in ONE_THREAD.items():
        os.environ.setdefault(name, value)
    keras = pytest.importorskip("keras")
    write_tiny_histology(tmp_path / "data")
    with template_src(template):
        from src import dataloader, taskrunner

        loader = getattr(dataloader, loader_name)(
            "1", 8, 1, histology_folder=str(tmp_path / "data"), image_size=32
        )
        runner = getattr(taskrunner, runner_name)(loader, learning_rate=0.01)
        losses = [runner.train_task(r, metrics=["loss"]).metrics["loss"] for r in range(4)]
        assert losses[-1] < losses[0]
        assert set(runner.validate_task(3, metrics=["acc"]).metrics) == {"acc"}
        path = runner.save_native(tmp_path / "model.keras")
    x = next(iter(loader.get_valid_loader()))[0]
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(
        loaded.predict_on_batch(x), runner.model.predict_on_batch(x), rtol=1e-4, atol=1e-6
    )
