"""torch/histology, keras/histology and tf_cnn_histology train on tiny tile sets in Kather 2016's layout."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from openfl_cli.errors import UsageError
from tests.runners.helpers import ONE_THREAD, TEMPLATES, template_src, write_tiny_histology

pytest.importorskip("PIL")
HISTOLOGY = ["torch/histology", "keras/histology", "tf_cnn_histology"]


def test_reader_is_the_same_file_in_every_histology_template() -> None:
    texts = {(TEMPLATES / name / "src/histology.py").read_text() for name in HISTOLOGY}
    assert len(texts) == 1


def test_tiles_are_read_at_full_size_and_sharded(tmp_path: Path) -> None:
    write_tiny_histology(tmp_path, per_class=5)
    with template_src("torch/histology"):
        from src.histology import load_histology

        classes, (x1, y1), (v1, _) = load_histology(tmp_path, 0, 2)
        _, (x2, y2), (v2, _) = load_histology(tmp_path / "Kather_texture_2016_image_tiles_5000", 1, 2)
    assert classes[0] == "01_TUMOR" and len(classes) == 8
    assert x1.shape[1:] == (150, 150, 3) and x1.dtype == np.uint8
    assert len(x1) + len(v1) + len(x2) + len(v2) == 40 and len(v1) == 4
    assert set(y1) | set(y2) <= set(range(8))


def test_missing_tiles_offline_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FX_OFFLINE", "1")
    with template_src("keras/histology"):
        from src.histology import load_histology

        with pytest.raises(UsageError, match="no histology tiles"):
            load_histology(tmp_path / "none")


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
