"""tf_2dunet: BraTS NIfTI cases become axial slices; the U-Net trains on a tiny set and saves a .keras."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from openfl_cli.errors import UsageError
from tests.runners.helpers import ONE_THREAD, template_src, write_tiny_brats

pytest.importorskip("nibabel")


def test_cases_are_sharded_and_sliced(tmp_path: Path) -> None:
    write_tiny_brats(tmp_path / "MICCAI_BraTS2020_TrainingData", cases=4)
    with template_src("tf_2dunet"):
        from src.brats import find_cases, load_brats

        assert len(find_cases(tmp_path)) == 4
        (x, y), (vx, _vy) = load_brats(tmp_path, 0, 2, modalities=("flair", "t1"), image_size=24)
        with pytest.raises(UsageError, match="no BraTS cases"):
            load_brats(tmp_path / "none")
    assert x.shape == (6, 24, 24, 2) and y.shape == (6, 24, 24, 1)  # one case of 6 slices for training
    assert vx.shape == (6, 24, 24, 2)  # the shard's other case validates
    assert set(np.unique(y)) == {0.0, 1.0}
    assert abs(float(x[..., 0][x[..., 0] != 0].mean())) < 0.5  # z-scored over the brain


@pytest.mark.keras
def test_unet_trains_and_saves(tmp_path: Path) -> None:
    for name, value in ONE_THREAD.items():
        os.environ.setdefault(name, value)
    keras = pytest.importorskip("keras")
    write_tiny_brats(tmp_path, cases=3, side=32)
    with template_src("tf_2dunet"):
        from src.dataloader import TensorFlowBratsInMemory
        from src.taskrunner import TensorFlow2DUNet

        loader = TensorFlowBratsInMemory("1", 4, 1, brats_folder=str(tmp_path), image_size=32)
        runner = TensorFlow2DUNet(loader, base_filters=4, depth=2, learning_rate=0.01)
        before = runner.validate_task(0, metrics=["dice_coef"]).metrics["dice_coef"]
        for round_number in range(4):
            runner.train_task(round_number, metrics=["loss"])
        after = runner.validate_task(4, metrics=["dice_coef"]).metrics["dice_coef"]
        assert after > before
        path = runner.save_native(tmp_path / "unet")
        loaded = keras.saving.load_model(path)  # the custom loss and metric are registered by the template
    x = loader.valid_batches.x
    np.testing.assert_allclose(
        loaded.predict_on_batch(x), runner.model.predict_on_batch(x), rtol=1e-4, atol=1e-6
    )
