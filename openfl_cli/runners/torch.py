"""The PyTorch task runner: users subclass it and override `build_model` (and, if they like, the rest).

Weights travel under their `state_dict` names (buffers such as BatchNorm statistics included).
Optimizer state travels as `__opt__.<parameter name>.<state key>` (for Adam: `step`, `exp_avg`,
`exp_avg_sq`), so it lines up across collaborators whatever the parameter order.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from openfl_cli.data.base import DataLoader
from openfl_cli.runners.base import OPT_PREFIX, ModelUpdate, TaskRunner
from openfl_cli.utils.fs import atomic_writer

log = logging.getLogger(__name__)


def default_device() -> torch.device:
    """CUDA when a GPU is present, the CPU otherwise."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class PyTorchTaskRunner(TaskRunner):
    """Trains `build_model()` with `build_optimizer()` and `loss_fn` on batches `(inputs, targets)`.

    Hooks a user overrides: `build_model` (required), `build_optimizer`, `loss_fn`, and for unusual
    training loops `train_epoch` / `validate_pass` (call `proximal_term()` to keep FedProx working).
    Settings: `learning_rate`, `device` (default: CUDA if present, else CPU), `seed` (initial weights).
    """

    def __init__(
        self,
        data_loader: DataLoader | None = None,
        learning_rate: float = 1e-3,
        device: str | None = None,
        seed: int | None = 0,
        **settings: Any,
    ) -> None:
        super().__init__(data_loader, **settings)
        self.learning_rate = float(learning_rate)
        self.device = torch.device(device) if device else default_device()
        with torch.random.fork_rng(devices=[]):  # same initial weights everywhere, global RNG untouched
            if seed is not None:
                torch.manual_seed(int(seed))
            model = self.build_model()
        self.model: nn.Module = model.to(self.device)
        self._optimizer: torch.optim.Optimizer | None = None  # see `optimizer`
        self._param_names = {id(param): name for name, param in self.model.named_parameters()}
        self._anchor: dict[str, torch.Tensor] | None = None
        self._mu = 0.0

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        """Built on first use: the first optimizer of a process imports torch._dynamo (seconds), which
        a runner asked only for its weights (`fx plan initialize`, the aggregator) never needs."""
        if self._optimizer is None:
            self._optimizer = self.build_optimizer(self.model.parameters())
        return self._optimizer

    @optimizer.setter
    def optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        self._optimizer = optimizer

    # --- hooks -----------------------------------------------------------------------------------
    def build_model(self) -> nn.Module:
        raise NotImplementedError(f"{type(self).__name__} must implement build_model()")

    def build_optimizer(self, params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
        return torch.optim.Adam(params, lr=self.learning_rate)

    def loss_fn(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(output, target)

    # --- tensors ---------------------------------------------------------------------------------
    def get_tensor_dict(self, with_opt_vars: bool = False) -> dict[str, np.ndarray]:
        tensors = {name: _to_numpy(value) for name, value in self.model.state_dict().items()}
        if with_opt_vars:
            tensors.update(self._optimizer_tensors())
        return tensors

    def set_tensor_dict(self, tensors: Mapping[str, np.ndarray], with_opt_vars: bool = False) -> None:
        state = self.model.state_dict()
        missing = [name for name in state if name not in tensors]
        if missing:
            raise KeyError(f"tensors missing for the model: {missing[:5]}")
        with torch.no_grad():
            for name, target in state.items():
                _copy_into(target, tensors[name], name)
        if with_opt_vars:
            self._load_optimizer_tensors(tensors)

    def reset_opt_vars(self) -> None:
        self.optimizer.state.clear()

    def _optimizer_tensors(self) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for param, name in self._optimized_params():
            for key, value in self.optimizer.state.get(param, {}).items():
                if torch.is_tensor(value) or isinstance(value, (int, float)):
                    found[f"{OPT_PREFIX}{name}.{key}"] = _to_numpy(value)
        return found

    def _load_optimizer_tensors(self, tensors: Mapping[str, np.ndarray]) -> None:
        by_param: dict[str, dict[str, np.ndarray]] = {}
        for full_name, array in tensors.items():
            if full_name.startswith(OPT_PREFIX):
                param_name, _, key = full_name[len(OPT_PREFIX) :].rpartition(".")
                by_param.setdefault(param_name, {})[key] = array
        for param, name in self._optimized_params():
            state = self.optimizer.state[param]
            for key, array in by_param.get(name, {}).items():
                current = state.get(key)
                if isinstance(current, (int, float)):
                    state[key] = type(current)(np.asarray(array).item())
                elif torch.is_tensor(current):
                    with torch.no_grad():
                        _copy_into(current, array, f"{OPT_PREFIX}{name}.{key}")
                else:  # scalars (Adam's `step`) live on the CPU, buffers beside their parameter
                    value = torch.from_numpy(_writable(array))
                    state[key] = value if value.ndim == 0 else value.to(param.device)

    def _optimized_params(self) -> Iterable[tuple[nn.Parameter, str]]:
        for group in self.optimizer.param_groups:
            for param in group["params"]:
                name = self._param_names.get(id(param))
                if name is not None:
                    yield param, name

    # --- FedProx ---------------------------------------------------------------------------------
    def train_task(
        self,
        round_number: int,
        epochs: int = 1,
        metrics: Sequence[str] | None = None,
        task_name: str = "train",
        mu: float = 0.0,
        **kwargs: Any,
    ) -> ModelUpdate:
        """`mu > 0` adds FedProx's proximal term (mu/2)*||w - w_global||^2 to the training loss."""
        if mu < 0:
            raise ValueError(f"mu must be >= 0, got {mu}")
        self._mu = float(mu)
        self._anchor = (
            {name: param.detach().clone() for name, param in self.model.named_parameters()} if mu else None
        )
        try:
            return super().train_task(round_number, epochs, metrics, task_name, **kwargs)
        finally:
            self._anchor, self._mu = None, 0.0

    def proximal_term(self) -> torch.Tensor | float:
        """FedProx's penalty against the weights training started from (0 when `mu` is not set)."""
        if self._anchor is None:
            return 0.0
        total = sum(
            (param - self._anchor[name]).pow(2).sum() for name, param in self.model.named_parameters()
        )
        return 0.5 * self._mu * total

    # --- the two passes --------------------------------------------------------------------------
    def train_epoch(self, round_number: int, **kwargs: Any) -> dict[str, float]:
        """One pass over the training batches; reports the mean data loss (without the FedProx term)."""
        self.model.train()
        total = torch.zeros((), device=self.device)
        seen = 0
        for inputs, targets in self.loader_batches("train", kwargs):
            inputs, targets = inputs.to(self.device), targets.to(self.device)
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.loss_fn(self.model(inputs), targets)
            (loss + self.proximal_term()).backward()
            self.optimizer.step()
            total += loss.detach() * len(targets)  # no .item(): no device sync per batch
            seen += len(targets)
        return {"loss": float(total) / max(seen, 1)}

    def validate_pass(self, round_number: int, **kwargs: Any) -> dict[str, float]:
        """Accuracy and mean loss over the validation batches."""
        self.model.eval()
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        total = torch.zeros((), device=self.device)
        seen = 0
        with torch.no_grad():
            for inputs, targets in self.loader_batches("valid", kwargs):
                inputs, targets = inputs.to(self.device), targets.to(self.device)
                output = self.model(inputs)
                total += self.loss_fn(output, targets) * len(targets)
                correct += (output.argmax(dim=1) == targets).sum()
                seen += len(targets)
        return {"acc": int(correct) / max(seen, 1), "loss": float(total) / max(seen, 1)}

    # --- native format ---------------------------------------------------------------------------
    def save_native(self, path: str | Path) -> Path:
        """Write a `.pt` of `model_state_dict` and `optimizer_state_dict` (loads with weights_only)."""
        target = Path(path)
        if target.is_dir():
            target = target / "model.pt"
        elif not target.suffix:
            target = target.with_suffix(".pt")
        target.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "model_state_dict": self.model.state_dict(),
            "optimizer_state_dict": self.optimizer.state_dict(),
        }
        with atomic_writer(target) as handle:
            torch.save(payload, handle)
        log.info("saved the PyTorch model to %s", target)
        return target

    def load_native(self, path: str | Path) -> None:
        """Load a `.pt` written by `save_native` (or a bare state dict); never unpickles objects."""
        saved = torch.load(Path(path), map_location=self.device, weights_only=True)
        if "model_state_dict" in saved:
            self.model.load_state_dict(saved["model_state_dict"])
            if saved.get("optimizer_state_dict"):
                self.optimizer.load_state_dict(saved["optimizer_state_dict"])
        else:
            self.model.load_state_dict(saved)


def _to_numpy(value: torch.Tensor | float) -> np.ndarray:
    if not torch.is_tensor(value):
        return np.asarray(value)
    value = value.detach()
    if value.dtype == torch.bfloat16:  # NumPy has no bfloat16: travel as float32, cast back on load
        value = value.float()
    return value.cpu().numpy().copy()


def _writable(array: np.ndarray) -> np.ndarray:
    # torch.from_numpy warns on read-only arrays (zero-copy views over received bytes)
    array = np.asarray(array)
    return array if array.flags.writeable else array.copy()


def _copy_into(target: torch.Tensor, array: np.ndarray, name: str) -> None:
    array = np.asarray(array)
    if tuple(array.shape) != tuple(target.shape):
        raise ValueError(f"tensor {name!r}: expected shape {tuple(target.shape)}, got {array.shape}")
    target.copy_(torch.from_numpy(_writable(array)))
