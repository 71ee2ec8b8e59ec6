"""The Keras 3 task runner: stable names, tensors, optimizer treatments, validation, .keras files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.runners.helpers import ONE_THREAD, BlobLoader

for _name, _value in ONE_THREAD.items():
    os.environ.setdefault(_name, _value)
keras = pytest.importorskip("keras")

from openfl_cli.data.base import DataLoader  # noqa: E402
from openfl_cli.runners.base import OPT_PREFIX  # noqa: E402
from openfl_cli.runners.keras import KerasTaskRunner  # noqa: E402

pytestmark = pytest.mark.keras
Batches = list[tuple[np.ndarray, np.ndarray]]


class Blobs(DataLoader):
    def __init__(self, data_path: str = "1", batch_size: int = 16, **settings: Any) -> None:
        super().__init__(data_path, batch_size, **settings)
        self.x, self.y = BlobLoader.arrays(int(data_path))

    def _batches(self, lo: int, hi: int) -> Batches:
        return [(self.x[i : i + self.batch_size], self.y[i : i + self.batch_size]) for i in range(lo, hi, 16)]

    def get_train_loader(self, **kwargs: Any) -> Batches:
        return self._batches(0, 64)

    def get_valid_loader(self, **kwargs: Any) -> Batches:
        return self._batches(64, 96)

    def get_train_data_size(self) -> int:
        return 64

    def get_valid_data_size(self) -> int:
        return 32

    def get_feature_shape(self) -> tuple[int, ...]:
        return (4,)


def build_net() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )


class TinyRunner(KerasTaskRunner):
    def build_model(self) -> keras.Model:
        return build_net()


def make_runner(data_path: str = "1", seed: int = 0) -> TinyRunner:
    return TinyRunner(Blobs(data_path), learning_rate=0.05, seed=seed)


def split(tensors: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    opt = {k: v for k, v in tensors.items() if k.startswith(OPT_PREFIX)}
    return {k: v for k, v in tensors.items() if k not in opt}, opt


def assert_same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_names_are_positional_and_stable_across_process_history() -> None:
    first = make_runner()
    for _ in range(3):  # bump Keras's auto-naming counters (dense_7, batch_normalization_4, ...)
        build_net()
    second = make_runner(seed=4)
    names = list(first.get_tensor_dict(with_opt_vars=True))
    assert names == list(second.get_tensor_dict(with_opt_vars=True))
    assert names[:4] == ["0/kernel", "0/bias", "1/gamma", "1/beta"]
    assert {"__opt__.iteration", "__opt__.0/kernel.momentum", "__opt__.3/bias.velocity"} <= set(names)
    assert not any("dense" in name or "learning_rate" in name for name in names)
    second.set_tensor_dict(first.get_tensor_dict())
    assert_same(second.get_tensor_dict(), first.get_tensor_dict())


def test_round_trip_with_optimizer_state_continues_identically() -> None:
    trained = make_runner()
    trained.train_task(0)
    state = trained.get_tensor_dict(with_opt_vars=True)
    assert int(state["__opt__.iteration"]) == 4
    fresh = make_runner(seed=7)
    fresh.set_tensor_dict(state, with_opt_vars=True)
    assert_same(fresh.get_tensor_dict(with_opt_vars=True), state)
    trained.train_task(1)
    fresh.train_task(1)
    a, b = trained.get_tensor_dict(with_opt_vars=True), fresh.get_tensor_dict(with_opt_vars=True)
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-5, atol=1e-6, err_msg=name)


def test_round_trip_without_optimizer_state_and_copies() -> None:
    trained = make_runner()
    trained.train_task(0)
    fresh = make_runner(seed=7)
    fresh.set_tensor_dict(trained.get_tensor_dict(with_opt_vars=True), with_opt_vars=False)
    weights, _ = split(trained.get_tensor_dict(with_opt_vars=True))
    assert_same(fresh.get_tensor_dict(), weights)
    assert int(fresh.get_tensor_dict(with_opt_vars=True)["__opt__.iteration"]) == 0
    x = fresh.data_loader.x
    np.testing.assert_array_equal(fresh.model.predict_on_batch(x), trained.model.predict_on_batch(x))
    weights["0/kernel"][:] = 9.0
    assert not np.any(trained.get_tensor_dict()["0/kernel"] == 9.0)
    with pytest.raises(ValueError, match="expected shape"):
        fresh.set_tensor_dict({**weights, "0/kernel": np.zeros((8, 4), np.float32)})
    with pytest.raises(KeyError, match="3/bias"):
        fresh.set_tensor_dict({k: v for k, v in weights.items() if k != "3/bias"})


def test_optimizer_treatments() -> None:
    runner = make_runner()
    runner.train_task(0)
    _, local_opt = split(runner.get_tensor_dict(with_opt_vars=True))
    other = make_runner("2")
    for round_number in range(2):
        other.train_task(round_number)
    global_model = other.get_tensor_dict(with_opt_vars=True)
    global_weights, global_opt = split(global_model)
    lr_before = float(runner.model.optimizer.learning_rate)

    runner.rebuild_model(global_model, opt_treatment="CONTINUE_LOCAL")
    after_weights, after_opt = split(runner.get_tensor_dict(with_opt_vars=True))
    assert_same(after_weights, global_weights)
    assert_same(after_opt, local_opt)

    runner.rebuild_model(global_model, opt_treatment="RESET", validation=True)
    assert_same(split(runner.get_tensor_dict(with_opt_vars=True))[1], local_opt)

    runner.rebuild_model(global_model, opt_treatment="CONTINUE_GLOBAL")
    assert_same(split(runner.get_tensor_dict(with_opt_vars=True))[1], global_opt)

    runner.rebuild_model(global_model, opt_treatment="RESET")
    _, reset_opt = split(runner.get_tensor_dict(with_opt_vars=True))
    assert all(not np.any(value) for value in reset_opt.values())
    assert float(runner.model.optimizer.learning_rate) == pytest.approx(lr_before)  # a setting, kept


def test_validate_global_and_local_with_metric_callback() -> None:
    runner = make_runner()
    seen: list[tuple[str, str, int, float]] = []
    runner.log_metric_callback = lambda *args: seen.append(args)
    global_weights = runner.get_tensor_dict()
    before = runner.validate_task(0, apply="global", metrics=["acc"], task_name="aggregated_model_validation")
    trained = runner.train_task(0, epochs=4, metrics=["loss"])
    local = runner.validate_task(0, apply="local", metrics=["accuracy", "acc"], task_name="local")
    assert (before.sample_count, trained.sample_count, local.sample_count) == (32, 64, 32)
    assert local.metrics["acc"] == local.metrics["accuracy"] > before.metrics["acc"]
    runner.rebuild_model(global_weights, validation=True)
    assert runner.validate_task(1, apply="global", metrics=["acc"]).metrics == before.metrics
    assert [entry[:2] for entry in seen[:4]] == [
        ("aggregated_model_validation", "acc"),
        ("train", "loss"),
        ("local", "accuracy"),
        ("local", "acc"),
    ]


def test_save_native_loads_with_keras_and_predicts_the_same(tmp_path: Path) -> None:
    runner = make_runner()
    runner.train_task(0)
    path = runner.save_native(tmp_path / "native")
    assert path == tmp_path / "native.keras" and path.is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["native.keras"]  # no partial file left behind
    loaded = keras.saving.load_model(path)
    x = runner.data_loader.x
    np.testing.assert_allclose(loaded.predict_on_batch(x), runner.model.predict_on_batch(x), rtol=1e-6)
    other = make_runner(seed=3)
    other.load_native(path)
    assert_same(other.get_tensor_dict(with_opt_vars=True), runner.get_tensor_dict(with_opt_vars=True))
