"""Server optimizers (Reddi et al., "Adaptive Federated Optimization"): the weighted average gives a
pseudo-gradient (global - average) that a server-side optimizer applies, with state that survives
rounds and is saved by the aggregator through `state_dict`.

Optimizer tensors sent by collaborators (names starting with `__opt__.`) are averaged, not stepped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from openfl_cli.federation.aggregation.average import WeightedAverage
from openfl_cli.federation.update import is_optimizer_tensor


def _check(name: str, value: float, low: float, high: float, *, low_open: bool, high_open: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        raise ValueError(f"{name} must be in {left}{low}, {high}{right}, got {value!r}")
    return float(value)


class _ServerOptimizer(WeightedAverage):
    """Keeps named state slots per tensor, e.g. {"velocity": {tensor: array}}."""

    slots: tuple[str, ...] = ()

    def __init__(self, server_learning_rate: float) -> None:
        super().__init__()
        self.server_learning_rate = _check(
            "server_learning_rate", server_learning_rate, 0.0, math.inf, low_open=True, high_open=True
        )
        self._state: dict[str, dict[str, np.ndarray]] = {slot: {} for slot in self.slots}

    def state_dict(self) -> dict[str, np.ndarray]:
        return {
            f"{slot}/{name}": value.copy()
            for slot, arrays in self._state.items()
            for name, value in arrays.items()
        }

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        loaded: dict[str, dict[str, np.ndarray]] = {slot: {} for slot in self.slots}
        for key, value in state.items():
            slot, sep, name = key.partition("/")
            if not sep or slot not in loaded:
                raise ValueError(f"{type(self).__name__}: unexpected state key {key!r} (slots: {self.slots})")
            loaded[slot][name] = np.array(value, copy=True)
        self._state = loaded

    def _server_step(self, name: str, global_value: np.ndarray, aggregate: np.ndarray) -> np.ndarray:
        if is_optimizer_tensor(name):
            return aggregate
        state_dtype = np.result_type(global_value.dtype, np.float32)
        slots = {}
        for slot in self.slots:
            current = self._state[slot].get(name)
            if current is not None and current.shape != global_value.shape:
                raise ValueError(
                    f"{type(self).__name__}: state {slot}/{name} has shape {current.shape}, "
                    f"the tensor has {global_value.shape}"
                )
            slots[slot] = (
                np.zeros(global_value.shape, np.float64) if current is None else current.astype(np.float64)
            )
        # Computed in float64; stored in the tensor's precision (at least float32).
        new_value = self._step(global_value.astype(np.float64), aggregate.astype(np.float64), slots)
        for slot, value in slots.items():
            self._state[slot][name] = value.astype(state_dtype)
        return new_value.astype(global_value.dtype)

    def _step(
        self, global_value: np.ndarray, average: np.ndarray, slots: dict[str, np.ndarray]
    ) -> np.ndarray:
        """Update `slots` in place and return the new global value (all float64)."""
        raise NotImplementedError


class FedAvgM(_ServerOptimizer):
    """Server momentum: v = momentum * v + (global - average); new = global - lr * v."""

    slots = ("velocity",)

    def __init__(self, server_learning_rate: float = 1.0, momentum: float = 0.9) -> None:
        super().__init__(server_learning_rate)
        self.momentum = _check("momentum", momentum, 0.0, 1.0, low_open=False, high_open=True)

    def _step(
        self, global_value: np.ndarray, average: np.ndarray, slots: dict[str, np.ndarray]
    ) -> np.ndarray:
        velocity = slots["velocity"]
        velocity *= self.momentum
        velocity += global_value - average
        return global_value - self.server_learning_rate * velocity


class FedAdam(_ServerOptimizer):
    """Adam on the server, without bias correction (as in the paper):
    d = average - global; m = b1 m + (1 - b1) d; v = b2 v + (1 - b2) d^2;
    new = global + lr m / (sqrt(v) + tau).
    """

    slots = ("m", "v")

    def __init__(
        self,
        server_learning_rate: float = 0.01,
        beta1: float = 0.9,
        beta2: float = 0.99,
        tau: float = 1e-3,
    ) -> None:
        super().__init__(server_learning_rate)
        self.beta1 = _check("beta1", beta1, 0.0, 1.0, low_open=False, high_open=True)
        self.beta2 = _check("beta2", beta2, 0.0, 1.0, low_open=False, high_open=True)
        self.tau = _check("tau", tau, 0.0, math.inf, low_open=True, high_open=True)

    def _step(
        self, global_value: np.ndarray, average: np.ndarray, slots: dict[str, np.ndarray]
    ) -> np.ndarray:
        delta = average - global_value
        first, second = slots["m"], slots["v"]
        first *= self.beta1
        first += (1 - self.beta1) * delta
        second *= self.beta2
        second += (1 - self.beta2) * np.square(delta)
        return global_value + self.server_learning_rate * first / (np.sqrt(second) + self.tau)
