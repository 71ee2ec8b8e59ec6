"""Softmax regression in plain NumPy, trained with minibatch SGD and momentum."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from openfl_cli.data.base import DataLoader
from openfl_cli.runners.base import OPT_PREFIX, TaskRunner

N_FEATURES, N_CLASSES = 64, 10


class DigitsSoftmaxRunner(TaskRunner):
    """Weights `W` (64x10) and `b` (10); the momentum buffers are the optimizer state."""

    def __init__(
        self,
        data_loader: DataLoader | None = None,
        learning_rate: float = 0.002,
        momentum: float = 0.9,
        seed: int = 0,
        **settings: Any,
    ) -> None:
        super().__init__(data_loader, **settings)
        self.learning_rate = float(learning_rate)
        self.momentum = float(momentum)
        rng = np.random.default_rng(seed)
        self.params = {
            "W": rng.normal(0.0, 0.01, (N_FEATURES, N_CLASSES)).astype(np.float32),
            "b": np.zeros(N_CLASSES, np.float32),
        }
        self.velocity: dict[str, np.ndarray] = {}
        self.reset_opt_vars()

    # --- tensors -------------------------------------------------------------------------------
    def get_tensor_dict(self, with_opt_vars: bool = False) -> dict[str, np.ndarray]:
        tensors = {name: value.copy() for name, value in self.params.items()}
        if with_opt_vars:
            tensors.update({OPT_PREFIX + name: value.copy() for name, value in self.velocity.items()})
        return tensors

    def set_tensor_dict(self, tensors: Mapping[str, np.ndarray], with_opt_vars: bool = False) -> None:
        for name, value in self.params.items():
            self.params[name] = _same_shape(tensors[name], value)
        if with_opt_vars:
            for name, value in self.velocity.items():
                if OPT_PREFIX + name in tensors:
                    self.velocity[name] = _same_shape(tensors[OPT_PREFIX + name], value)

    def reset_opt_vars(self) -> None:
        self.velocity = {name: np.zeros_like(value) for name, value in self.params.items()}

    # --- the two passes --------------------------------------------------------------------------
    def train_epoch(self, round_number: int, **kwargs: Any) -> dict[str, float]:
        total_loss, seen = 0.0, 0
        for x, y in self.data_loader.get_train_loader(seed=round_number):
            probs = self._probabilities(x)
            rows = np.arange(len(y))
            total_loss -= float(np.log(probs[rows, y] + 1e-12).sum())
            seen += len(y)
            probs[rows, y] -= 1.0  # gradient of the cross-entropy w.r.t. the logits: probs - one_hot(y)
            grad_logits = probs / len(y)
            grads = {"W": x.T @ grad_logits, "b": grad_logits.sum(axis=0)}
            for name, grad in grads.items():
                self.velocity[name] = self.momentum * self.velocity[name] - self.learning_rate * grad
                self.params[name] += self.velocity[name]
        return {"loss": total_loss / max(seen, 1)}

    def validate_pass(self, round_number: int, **kwargs: Any) -> dict[str, float]:
        correct, seen = 0, 0
        for x, y in self.data_loader.get_valid_loader():
            correct += int((self._probabilities(x).argmax(axis=1) == y).sum())
            seen += len(y)
        return {"acc": correct / max(seen, 1)}

    def _probabilities(self, x: np.ndarray) -> np.ndarray:
        logits = x @ self.params["W"] + self.params["b"]
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    # --- native format ---------------------------------------------------------------------------
    def save_native(self, path: str | Path) -> Path:
        """Write the weights as a NumPy `.npz` (arrays only, no pickled objects)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as handle:  # a file handle keeps the exact name (np.savez would add .npz)
            np.savez(handle, **self.params)
        return path

    def load_native(self, path: str | Path) -> None:
        with np.load(path, allow_pickle=False) as saved:
            self.set_tensor_dict({name: saved[name] for name in self.params})


def _same_shape(new: np.ndarray, current: np.ndarray) -> np.ndarray:
    array = np.asarray(new, dtype=current.dtype)
    if array.shape != current.shape:
        raise ValueError(f"expected a tensor of shape {current.shape}, got {array.shape}")
    return array.copy()
