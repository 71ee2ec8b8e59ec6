"""The numpy/digits template: sharding, tensors, optimizer state, determinism, learning."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from openfl_cli.errors import UsageError
from openfl_cli.runners.base import OPT_PREFIX, TaskRunner

N_DIGITS = 1797


def _runners(loader_mod: ModuleType, runner_mod: ModuleType, count: int = 2, **settings: float) -> list:
    loaders = [loader_mod.DigitsDataLoader(str(i), 32, count) for i in range(1, count + 1)]
    return [runner_mod.DigitsSoftmaxRunner(loader, **settings) for loader in loaders]


def _federate(runners: list, rounds: int) -> list[float]:
    """Plain FedAvg: the validation accuracy of the global model before each round and after the last."""
    global_weights = runners[0].get_tensor_dict()
    accuracies = []
    for round_number in range(rounds + 1):
        for runner in runners:
            runner.set_tensor_dict(global_weights)
            runner.reset_opt_vars()
        valid = [r.valid_sample_count for r in runners]
        accs = [r.validate_pass(round_number)["acc"] for r in runners]
        accuracies.append(float(np.average(accs, weights=valid)))
        if round_number == rounds:
            break
        for runner in runners:
            runner.train_epoch(round_number)
        counts = [r.train_sample_count for r in runners]
        global_weights = {
            name: np.average([r.get_tensor_dict()[name] for r in runners], axis=0, weights=counts).astype(
                np.float32
            )
            for name in global_weights
        }
    return accuracies


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_shards_are_disjoint_and_cover_the_data(digits_dataloader: ModuleType, count: int) -> None:
    seen: list[np.ndarray] = []
    for shard in range(1, count + 1):
        loader = digits_dataloader.DigitsDataLoader(str(shard), 16, count)
        assert loader.get_train_data_size() + loader.get_valid_data_size() in (
            N_DIGITS // count,
            N_DIGITS // count + 1,
        )
        assert set(loader.parts["train"].rows).isdisjoint(loader.parts["valid"].rows)
        seen += [loader.parts["train"].rows, loader.parts["valid"].rows]
    everything = np.concatenate(seen)
    assert len(everything) == N_DIGITS
    assert set(everything.tolist()) == set(range(N_DIGITS))


def test_split_and_batches_are_deterministic(digits_dataloader: ModuleType) -> None:
    a, b = (digits_dataloader.DigitsDataLoader("2", 32, 2) for _ in range(2))
    assert np.array_equal(a.parts["valid"].rows, b.parts["valid"].rows)
    for (xa, ya), (xb, yb) in zip(a.get_train_loader(seed=4), b.get_train_loader(seed=4), strict=True):
        assert np.array_equal(xa, xb) and np.array_equal(ya, yb)
    first = np.concatenate([y for _, y in a.get_train_loader(seed=1)])
    second = np.concatenate([y for _, y in a.get_train_loader(seed=2)])
    assert not np.array_equal(first, second)  # each round sees its own order
    assert sorted(first) == sorted(second)
    assert a.get_feature_shape() == (64,)
    x, y = a.get_valid_loader()[0]
    assert x.dtype == np.float32 and x.shape == (32, 64) and x.min() >= 0.0 and x.max() <= 1.0
    assert y.dtype == np.int64


@pytest.mark.parametrize("path", ["0", "3", "one", ""])
def test_bad_shard_numbers(digits_dataloader: ModuleType, path: str) -> None:
    with pytest.raises(UsageError, match="shard number"):
        digits_dataloader.DigitsDataLoader(path, 32, 2)


def test_tensor_round_trip(digits_dataloader: ModuleType, digits_taskrunner: ModuleType) -> None:
    runner, other = _runners(digits_dataloader, digits_taskrunner)
    assert isinstance(runner, TaskRunner)
    tensors = runner.get_tensor_dict()
    assert {n: (t.shape, t.dtype) for n, t in tensors.items()} == {
        "W": ((64, 10), np.float32),
        "b": ((10,), np.float32),
    }
    tensors["W"][:] = 7  # a copy: the model must not change
    assert not np.any(runner.get_tensor_dict()["W"] == 7)
    other.set_tensor_dict(tensors)
    assert np.all(other.get_tensor_dict()["W"] == 7)
    with pytest.raises(ValueError, match="shape"):
        other.set_tensor_dict({"W": np.zeros((10, 64), np.float32), "b": tensors["b"]})


def test_optimizer_state(digits_dataloader: ModuleType, digits_taskrunner: ModuleType) -> None:
    runner, other = _runners(digits_dataloader, digits_taskrunner)
    assert set(runner.get_tensor_dict(with_opt_vars=True)) == {"W", "b", f"{OPT_PREFIX}W", f"{OPT_PREFIX}b"}
    runner.train_epoch(0)
    state = runner.get_tensor_dict(with_opt_vars=True)
    assert np.abs(state[f"{OPT_PREFIX}W"]).sum() > 0
    other.set_tensor_dict(state, with_opt_vars=True)
    assert np.array_equal(
        other.get_tensor_dict(with_opt_vars=True)[f"{OPT_PREFIX}W"], state[f"{OPT_PREFIX}W"]
    )
    other.set_tensor_dict(state)  # weights only: the optimizer state stays
    runner.reset_opt_vars()
    assert not np.any(runner.get_tensor_dict(with_opt_vars=True)[f"{OPT_PREFIX}W"])
    result = other.train_task(1, epochs=2, metrics=["loss"])
    assert set(result.tensors) == set(state) and result.sample_count == other.train_sample_count
    assert set(other.validate_task(1, metrics=["acc"]).metrics) == {"acc"}


def test_training_is_deterministic(digits_dataloader: ModuleType, digits_taskrunner: ModuleType) -> None:
    runs = []
    for _ in range(2):
        runner = _runners(digits_dataloader, digits_taskrunner)[1]
        losses = [runner.train_epoch(r)["loss"] for r in range(3)]
        runs.append((losses, runner.get_tensor_dict(with_opt_vars=True)))
    assert runs[0][0] == runs[1][0]
    assert all(value.dtype == np.float32 for value in runs[0][1].values())
    for name, value in runs[0][1].items():
        assert np.array_equal(value, runs[1][1][name]), name


def test_accuracy_rises_over_three_rounds(
    digits_dataloader: ModuleType, digits_taskrunner: ModuleType
) -> None:
    accuracies = _federate(_runners(digits_dataloader, digits_taskrunner), rounds=3)
    assert accuracies[0] < 0.2  # random initial weights
    assert accuracies[1] < 0.8  # round 1 is far from converged
    assert all(later > earlier for earlier, later in itertools.pairwise(accuracies))
    assert accuracies[-1] > accuracies[1] + 0.15


def test_one_epoch_is_fast(digits_dataloader: ModuleType, digits_taskrunner: ModuleType) -> None:
    runner = _runners(digits_dataloader, digits_taskrunner)[0]
    start = time.perf_counter()
    runner.train_epoch(0)
    assert time.perf_counter() - start < 0.25


def test_native_model_round_trip(
    digits_dataloader: ModuleType, digits_taskrunner: ModuleType, tmp_path: Path
) -> None:
    runner, other = _runners(digits_dataloader, digits_taskrunner)
    runner.train_epoch(0)
    written = runner.save_native(tmp_path / "out" / "model.bin")
    assert written == tmp_path / "out" / "model.bin" and written.is_file()  # the exact name asked for
    with np.load(written, allow_pickle=False) as saved:
        assert sorted(saved.files) == ["W", "b"]
        assert np.array_equal(saved["W"], runner.get_tensor_dict()["W"])
    other.load_native(written)
    for name, value in runner.get_tensor_dict().items():
        assert np.array_equal(other.get_tensor_dict()[name], value)


def test_continue_global_without_optimizer_tensors(
    digits_dataloader: ModuleType, digits_taskrunner: ModuleType
) -> None:
    runner = _runners(digits_dataloader, digits_taskrunner)[0]
    runner.train_epoch(0)
    velocity = runner.get_tensor_dict(with_opt_vars=True)[f"{OPT_PREFIX}W"]
    weights_only = {"W": np.ones((64, 10), np.float32), "b": np.zeros(10, np.float32)}
    runner.set_tensor_dict(weights_only, with_opt_vars=True)  # the first round's global model has none
    after = runner.get_tensor_dict(with_opt_vars=True)
    assert np.array_equal(after["W"], weights_only["W"])
    assert np.array_equal(after[f"{OPT_PREFIX}W"], velocity)
