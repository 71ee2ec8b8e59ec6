"""The Keras 3 task runner: one runner for the TensorFlow, JAX and PyTorch backends.

The backend is Keras's choice: the KERAS_BACKEND environment variable, read when Keras is first
imported (TensorFlow when unset). Weight names are positional (`<layer index>/<variable name>`, for
example `0/kernel`), never Keras's auto-generated layer names (`dense_3`), which depend on what the
process built before and would differ between collaborators. Optimizer slots are named after the
weight they belong to (`__opt__.0/kernel.momentum`); the learning rate is a setting, not state, and
does not travel.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from openfl_cli.data.base import DataLoader
from openfl_cli.runners.base import OPT_PREFIX, TaskRunner
from openfl_cli.runners.frameworks import install_hint, tensorflow_import

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
try:
    with tensorflow_import():  # Keras reads the backend on its first import, and loads it
        import keras
except ModuleNotFoundError as missing:
    raise ModuleNotFoundError(f"{missing}{install_hint(missing.name)}", name=missing.name) from None

log = logging.getLogger(__name__)
NOT_STATE = ("learning_rate",)  # optimizer variables that are settings


def backend() -> str:
    return keras.backend.backend()


class KerasTaskRunner(TaskRunner):
    """Trains `build_model()` batch by batch on `(inputs, targets)` from the data loader.

    Hooks: `build_model` (required; return it compiled to choose your own optimizer, loss and
    metrics), else `build_optimizer`, `loss` and `metrics` are used to compile it. Validation reports
    Keras's metrics, `accuracy` also as `acc`. Settings: `learning_rate`, `seed` (sets Keras's global
    seed before building, for identical initial weights).
    """

    loss: Any = "sparse_categorical_crossentropy"
    metrics: tuple[Any, ...] = ("accuracy",)
    custom_objects: dict[str, Any] | None = None  # what keras.saving.load_model needs for custom layers

    def __init__(
        self,
        data_loader: DataLoader | None = None,
        learning_rate: float = 1e-3,
        seed: int | None = None,
        **settings: Any,
    ) -> None:
        super().__init__(data_loader, **settings)
        self.learning_rate = float(learning_rate)
        if seed is not None:
            keras.utils.set_random_seed(int(seed))
        model = self.build_model()
        if not model.built and data_loader is not None:
            model.build((None, *data_loader.get_feature_shape()))
        if not getattr(model, "compiled", False):
            model.compile(optimizer=self.build_optimizer(), loss=self.loss, metrics=list(self.metrics))
        model.optimizer.build(model.trainable_variables)  # slots exist (as zeros) from the start
        self.model: keras.Model = model
        self._weights = _weight_names(model)
        self._opt_vars = _optimizer_names(model.optimizer, self._weights)
        self._opt_initial = {name: _numpy(var) for name, var in self._opt_vars.items()}
        log.debug("Keras backend %s, %d weights", backend(), len(self._weights))

    # --- hooks -----------------------------------------------------------------------------------
    def build_model(self) -> keras.Model:
        raise NotImplementedError(f"{type(self).__name__} must implement build_model()")

    def build_optimizer(self) -> keras.optimizers.Optimizer:
        return keras.optimizers.Adam(learning_rate=self.learning_rate)

    # --- tensors ---------------------------------------------------------------------------------
    def get_tensor_dict(self, with_opt_vars: bool = False) -> dict[str, np.ndarray]:
        tensors = {name: _numpy(var) for name, var in self._weights.items()}
        if with_opt_vars:
            tensors.update({name: _state_numpy(var) for name, var in self._opt_vars.items()})
        return tensors

    def set_tensor_dict(self, tensors: Mapping[str, np.ndarray], with_opt_vars: bool = False) -> None:
        missing = [name for name in self._weights if name not in tensors]
        if missing:
            raise KeyError(f"tensors missing for the model: {missing[:5]}")
        for name, var in self._weights.items():
            _assign(var, tensors[name], name)
        if with_opt_vars:  # absent before the first aggregation: keep ours
            for name, var in self._opt_vars.items():
                if name in tensors:
                    _assign(var, tensors[name], name)

    def reset_opt_vars(self) -> None:
        for name, var in self._opt_vars.items():
            var.assign(self._opt_initial[name])

    # --- the two passes --------------------------------------------------------------------------
    def train_epoch(self, round_number: int, **kwargs: Any) -> dict[str, float]:
        return self._run(self.loader_batches("train", kwargs), self.model.train_on_batch)

    def validate_pass(self, round_number: int, **kwargs: Any) -> dict[str, float]:
        return self._run(self.loader_batches("valid", kwargs), self.model.test_on_batch)

    def _run(self, batches: Any, step: Any) -> dict[str, float]:
        """Sample-weighted means of the per-batch logs (Keras resets its metrics on every batch)."""
        totals: dict[str, float] = {}
        seen = 0
        for inputs, targets in batches:
            logs = step(inputs, targets, return_dict=True)
            count = len(targets)
            for key, value in logs.items():
                totals[key] = totals.get(key, 0.0) + float(value) * count
            seen += count
        means = {key: total / max(seen, 1) for key, total in totals.items()}
        if "accuracy" in means:
            means["acc"] = means["accuracy"]
        return means

    # --- native format ---------------------------------------------------------------------------
    def save_native(self, path: str | Path) -> Path:
        """Write a `.keras` file (model, weights and optimizer state), published atomically."""
        target = Path(path)
        if target.is_dir():
            target = target / "model.keras"
        elif target.suffix != ".keras":
            target = target.with_name(target.name + ".keras")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.stem}.partial.keras")
        try:
            self.model.save(partial)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        log.info("saved the Keras model to %s", target)
        return target

    def load_native(self, path: str | Path) -> None:
        """Load weights (and optimizer state when saved) from a `.keras` file; safe mode on."""
        loaded = keras.saving.load_model(Path(path), custom_objects=self.custom_objects, safe_mode=True)
        self.model.set_weights(loaded.get_weights())
        saved_opt = getattr(loaded, "optimizer", None)
        if saved_opt is not None and saved_opt.variables:
            found = _optimizer_names(saved_opt, _weight_names(loaded))
            if found.keys() == self._opt_vars.keys():
                for name, var in self._opt_vars.items():
                    _assign(var, _numpy(found[name]), name)


def _weight_names(model: keras.Model) -> dict[str, keras.Variable]:
    """`<layer index>/<name>` for each weight (`<layer index>/<position>.<name>` when names repeat)."""
    names: dict[str, keras.Variable] = {}
    seen: set[int] = set()
    groups = [(str(i), layer.weights) for i, layer in enumerate(model.layers)]
    groups.append(("model", model.weights))  # variables of a subclassed model itself
    for prefix, variables in groups:
        fresh = [var for var in variables if id(var) not in seen]
        short = [var.name for var in fresh]
        for position, var in enumerate(fresh):
            label = var.name if short.count(var.name) == 1 else f"{position}.{var.name}"
            names[f"{prefix}/{label}"] = var
            seen.add(id(var))
    return names


def _optimizer_names(
    optimizer: keras.optimizers.Optimizer, weights: Mapping[str, keras.Variable]
) -> dict[str, keras.Variable]:
    """Slots are named by Keras after their weight's path; rename them after the weight's stable name."""
    by_path = {var.path.replace("/", "_"): name for name, var in weights.items()}
    names: dict[str, keras.Variable] = {}
    for position, var in enumerate(optimizer.variables):
        if var.name in NOT_STATE:
            continue
        owner = max((path for path in by_path if var.name.startswith(path + "_")), key=len, default=None)
        if owner is not None:
            label = f"{by_path[owner]}.{var.name[len(owner) + 1 :]}"
        elif var.name in ("iteration", "iterations"):
            label = var.name
        else:
            label = f"{position}.{var.name}"
        names[OPT_PREFIX + label] = var
    return names


def _numpy(var: keras.Variable) -> np.ndarray:
    return np.array(keras.ops.convert_to_numpy(var.value), copy=True)


def _state_numpy(var: keras.Variable) -> np.ndarray:
    """Optimizer state as it travels: integer counters as int64 whatever the backend (JAX keeps the
    iteration as int32, TensorFlow as int64), so that collaborators on different backends send the same
    dtypes; `_assign` casts back to the variable's own."""
    array = _numpy(var)
    return array.astype(np.int64) if array.dtype.kind in "iu" else array


def _assign(var: keras.Variable, value: np.ndarray, name: str) -> None:
    array = np.asarray(value)
    if tuple(array.shape) != tuple(var.shape):
        raise ValueError(f"tensor {name!r}: expected shape {tuple(var.shape)}, got {array.shape}")
    var.assign(array.astype(var.dtype, copy=False))
