"""The PyTorch task runner: tensors, optimizer treatments, validation, FedProx, native files."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from openfl_cli.data.base import DataLoader  # noqa: E402
from openfl_cli.runners.base import OPT_PREFIX  # noqa: E402
from openfl_cli.runners.torch import PyTorchTaskRunner, default_device  # noqa: E402

pytestmark = pytest.mark.torch
torch.set_num_threads(1)


class BlobLoader(DataLoader):
    """Two Gaussian blobs per class in 4 dimensions, in fixed batches (no shuffling: runs repeat)."""

    def __init__(self, data_path: str = "1", batch_size: int = 16, **settings: Any) -> None:
        super().__init__(data_path, batch_size, **settings)
        gen = torch.Generator().manual_seed(int(data_path))
        self.y = torch.arange(96) % 3
        self.x = torch.randn(96, 4, generator=gen) * 0.5 + self.y[:, None].float()
        self.n_train = 64

    def _batches(self, lo: int, hi: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [
            (self.x[i : min(i + self.batch_size, hi)], self.y[i : min(i + self.batch_size, hi)])
            for i in range(lo, hi, self.batch_size)
        ]

    def get_train_loader(self, **kwargs: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return self._batches(0, self.n_train)

    def get_valid_loader(self, **kwargs: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return self._batches(self.n_train, len(self.y))

    def get_train_data_size(self) -> int:
        return self.n_train

    def get_valid_data_size(self) -> int:
        return len(self.y) - self.n_train


def build_net() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))


class TinyRunner(PyTorchTaskRunner):
    def build_model(self) -> nn.Module:
        return build_net()


def make_runner(data_path: str = "1", **settings: Any) -> TinyRunner:
    return TinyRunner(BlobLoader(data_path), learning_rate=settings.pop("learning_rate", 0.05), **settings)


def weights(runner: PyTorchTaskRunner) -> dict[str, np.ndarray]:
    return runner.get_tensor_dict(with_opt_vars=False)


def assert_same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == b[name].dtype, name
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def opt_part(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name: value for name, value in tensors.items() if name.startswith(OPT_PREFIX)}


# --- tensors -----------------------------------------------------------------------------------------
def test_same_seed_same_initial_weights_and_global_rng_untouched() -> None:
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    a, b = make_runner(), make_runner()
    assert torch.rand(1) == expected
    assert_same(weights(a), weights(b))
    assert not np.array_equal(weights(make_runner(seed=1))["0.weight"], weights(a)["0.weight"])


def test_tensor_names_dtypes_and_copies() -> None:
    runner = make_runner()
    tensors = weights(runner)
    assert set(tensors) == set(runner.model.state_dict())
    assert tensors["1.num_batches_tracked"].dtype == np.int64  # buffers keep their dtype
    assert tensors["0.weight"].dtype == np.float32 and tensors["0.weight"].shape == (8, 4)
    tensors["0.weight"][:] = 42.0
    assert not np.any(weights(runner)["0.weight"] == 42.0)


def test_round_trip_without_optimizer_state() -> None:
    trained = make_runner()
    trained.train_task(0)
    fresh = make_runner(seed=7)
    fresh.set_tensor_dict(trained.get_tensor_dict(with_opt_vars=True), with_opt_vars=False)
    assert_same(weights(fresh), weights(trained))
    assert opt_part(fresh.get_tensor_dict(with_opt_vars=True)) == {}  # the optimizer was left alone
    x = fresh.data_loader.x[:10]
    fresh.model.eval(), trained.model.eval()
    assert torch.equal(fresh.model(x), trained.model(x))


def test_round_trip_with_optimizer_state_continues_training_identically() -> None:
    trained = make_runner()
    trained.train_task(0)
    state = trained.get_tensor_dict(with_opt_vars=True)
    assert {"__opt__.0.weight.step", "__opt__.0.weight.exp_avg", "__opt__.3.bias.exp_avg_sq"} <= set(state)
    fresh = make_runner(seed=7)
    fresh.set_tensor_dict(state, with_opt_vars=True)
    assert_same(fresh.get_tensor_dict(with_opt_vars=True), state)
    trained.train_task(1)
    fresh.train_task(1)
    assert_same(fresh.get_tensor_dict(with_opt_vars=True), trained.get_tensor_dict(with_opt_vars=True))


def test_read_only_arrays_load_without_warnings() -> None:
    trained = make_runner()
    trained.train_task(0)
    state = trained.get_tensor_dict(with_opt_vars=True)
    for array in state.values():
        array.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_runner().set_tensor_dict(state, with_opt_vars=True)


def test_wrong_shapes_and_missing_tensors_are_refused() -> None:
    runner = make_runner()
    tensors = weights(runner)
    with pytest.raises(ValueError, match=r"'0.weight': expected shape \(8, 4\)"):
        runner.set_tensor_dict({**tensors, "0.weight": np.zeros((4, 8), np.float32)})
    del tensors["3.bias"]
    with pytest.raises(KeyError, match=r"3\.bias"):
        runner.set_tensor_dict(tensors)


# --- optimizer treatments ----------------------------------------------------------------------------
def trained_pair() -> tuple[TinyRunner, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """A runner after one round, its local state, and a 'global' model with different optimizer state."""
    runner = make_runner()
    runner.train_task(0)
    local = runner.get_tensor_dict(with_opt_vars=True)
    other = make_runner("2")
    other.train_task(0)
    other.train_task(1)
    return runner, local, other.get_tensor_dict(with_opt_vars=True)


def test_reset_clears_the_optimizer_state() -> None:
    runner, _, global_model = trained_pair()
    runner.rebuild_model(global_model, opt_treatment="RESET")
    assert_same(weights(runner), {k: v for k, v in global_model.items() if k not in opt_part(global_model)})
    assert opt_part(runner.get_tensor_dict(with_opt_vars=True)) == {}
    assert len(runner.optimizer.state) == 0


def test_continue_local_keeps_this_runners_state() -> None:
    runner, local, global_model = trained_pair()
    runner.rebuild_model(global_model, opt_treatment="CONTINUE_LOCAL")
    after = runner.get_tensor_dict(with_opt_vars=True)
    assert_same(opt_part(after), opt_part(local))
    np.testing.assert_array_equal(after["0.weight"], global_model["0.weight"])


def test_continue_global_loads_the_global_state() -> None:
    runner, local, global_model = trained_pair()
    runner.rebuild_model(global_model, opt_treatment="CONTINUE_GLOBAL")
    after = runner.get_tensor_dict(with_opt_vars=True)
    assert_same(opt_part(after), opt_part(global_model))
    assert float(after["__opt__.0.weight.step"]) == 2 * float(local["__opt__.0.weight.step"])


def test_continue_global_before_any_aggregated_state_keeps_training() -> None:
    runner = make_runner()
    runner.rebuild_model(weights(make_runner(seed=3)), opt_treatment="CONTINUE_GLOBAL")
    assert np.isfinite(runner.train_task(0).metrics["loss"])


def test_validation_never_touches_the_optimizer() -> None:
    runner, local, global_model = trained_pair()
    runner.rebuild_model(global_model, opt_treatment="RESET", validation=True)
    assert_same(opt_part(runner.get_tensor_dict(with_opt_vars=True)), opt_part(local))
    with pytest.raises(ValueError, match="opt_treatment"):
        runner.rebuild_model(global_model, opt_treatment="KEEP")


def test_reset_then_training_matches_a_fresh_optimizer() -> None:
    runner, _, global_model = trained_pair()
    runner.rebuild_model(global_model, opt_treatment="RESET")
    fresh = make_runner(seed=9)
    fresh.rebuild_model(global_model, opt_treatment="RESET")
    runner.train_task(1)
    fresh.train_task(1)
    assert_same(runner.get_tensor_dict(with_opt_vars=True), fresh.get_tensor_dict(with_opt_vars=True))


# --- tasks ---------------------------------------------------------------------------------------------
def test_validate_global_and_local_and_metric_callback() -> None:
    runner = make_runner()
    seen: list[tuple[str, str, int, float]] = []
    runner.log_metric_callback = lambda *args: seen.append(args)
    global_model = weights(runner)
    before = runner.validate_task(0, apply="global", metrics=["acc"], task_name="aggregated_model_validation")
    result = runner.train_task(0, epochs=3, metrics=["loss"])
    local = runner.validate_task(
        0, apply="local", metrics=["acc"], task_name="locally_tuned_model_validation"
    )
    assert before.sample_count == local.sample_count == 32 and result.sample_count == 64
    assert local.metrics["acc"] > before.metrics["acc"]
    assert set(result.tensors) >= set(global_model) and local.tensors == {}
    runner.rebuild_model(global_model, validation=True)
    again = runner.validate_task(1, apply="global", metrics=["acc"], task_name="aggregated_model_validation")
    assert again.metrics == before.metrics
    assert [entry[:3] for entry in seen] == [
        ("aggregated_model_validation", "acc", 0),
        ("train", "loss", 0),
        ("locally_tuned_model_validation", "acc", 0),
        ("aggregated_model_validation", "acc", 1),
    ]
    with pytest.raises(ValueError, match="apply"):
        runner.validate_task(0, apply="both")
    with pytest.raises(KeyError, match="f1"):
        runner.validate_task(0, metrics=["f1"])


# --- FedProx -------------------------------------------------------------------------------------------
def update_norm(mu: float) -> float:
    runner = make_runner()
    start = weights(runner)
    runner.train_task(0, epochs=2, mu=mu)
    end = weights(runner)
    return float(sum(np.sum((end[k] - start[k]) ** 2) for k in start if k.endswith("weight")))


def test_fedprox_term_changes_and_shrinks_the_update() -> None:
    plain, proximal = update_norm(0.0), update_norm(5.0)
    assert proximal != plain
    assert proximal < plain


def test_fedprox_anchor_is_dropped_after_the_task() -> None:
    runner = make_runner()
    runner.train_task(0, mu=0.5)
    assert runner.proximal_term() == 0.0
    with pytest.raises(ValueError, match="mu"):
        runner.train_task(0, mu=-1.0)


# --- native format -------------------------------------------------------------------------------------
def test_save_native_loads_in_plain_torch_and_predicts_the_same(tmp_path: Path) -> None:
    runner = make_runner()
    runner.train_task(0)
    written = runner.save_native(tmp_path / "model")
    assert written == tmp_path / "model.pt" and written.is_file()
    saved = torch.load(written, weights_only=True)
    plain = build_net()
    plain.load_state_dict(saved["model_state_dict"])
    plain.eval(), runner.model.eval()
    x = runner.data_loader.x
    assert torch.equal(plain(x), runner.model(x))
    assert saved["optimizer_state_dict"]["state"]


def test_load_native_restores_model_and_optimizer(tmp_path: Path) -> None:
    runner = make_runner()
    runner.train_task(0)
    path = runner.save_native(tmp_path / "native" / "model.pt")
    other = make_runner(seed=5)
    other.load_native(path)
    assert_same(other.get_tensor_dict(with_opt_vars=True), runner.get_tensor_dict(with_opt_vars=True))
    torch.save(build_net().state_dict(), tmp_path / "bare.pt")  # a bare state dict loads too
    other.load_native(tmp_path / "bare.pt")


def test_device_is_cuda_only_when_present(monkeypatch: pytest.MonkeyPatch) -> None:
    assert make_runner().device == default_device()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert default_device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert default_device().type == "cpu"
    assert make_runner(device="cpu").device.type == "cpu"
