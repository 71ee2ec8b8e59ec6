"""Server optimizer arithmetic (Reddi et al., "Adaptive Federated Optimization"), shared by the
streaming FedAvgM / FedAdam classes and the pure `fedavgm_step` / `fedadam_step`.

State is kept as {slot: {tensor name: array}}; its flat, saved form is {"slot/tensor name": array}.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np

from openfl_cli.federation.update import is_optimizer_tensor

FEDAVGM_SLOTS = ("velocity",)
FEDADAM_SLOTS = ("m", "v")

Slots = dict[str, np.ndarray]
State = dict[str, dict[str, np.ndarray]]
# (global, average, slots) -> new global value, all float64; updates `slots` in place.
Update = Callable[[np.ndarray, np.ndarray, Slots], np.ndarray]


def check_setting(
    name: str, value: float, low: float, high: float, *, low_open: bool, high_open: bool
) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        raise ValueError(f"{name} must be in {left}{low}, {high}{right}, got {value!r}")
    return float(value)


def check_learning_rate(value: float) -> float:
    return check_setting("server_learning_rate", value, 0.0, math.inf, low_open=True, high_open=True)


def check_unit(name: str, value: float) -> float:
    """A decay rate in [0, 1)."""
    return check_setting(name, value, 0.0, 1.0, low_open=False, high_open=True)


def check_tau(value: float) -> float:
    return check_setting("tau", value, 0.0, math.inf, low_open=True, high_open=True)


def fedavgm_update(
    global_value: np.ndarray, average: np.ndarray, slots: Slots, server_learning_rate: float, momentum: float
) -> np.ndarray:
    """v = momentum * v + (global - average); new = global - lr * v."""
    velocity = slots["velocity"]
    velocity *= momentum
    velocity += global_value - average
    return global_value - server_learning_rate * velocity


def fedadam_update(
    global_value: np.ndarray,
    average: np.ndarray,
    slots: Slots,
    server_learning_rate: float,
    beta1: float,
    beta2: float,
    tau: float,
) -> np.ndarray:
    """Adam without bias correction (as in the paper): d = average - global; m = b1 m + (1 - b1) d;
    v = b2 v + (1 - b2) d^2; new = global + lr m / (sqrt(v) + tau)."""
    delta = average - global_value
    first, second = slots["m"], slots["v"]
    first *= beta1
    first += (1 - beta1) * delta
    second *= beta2
    second += (1 - beta2) * np.square(delta)
    return global_value + server_learning_rate * first / (np.sqrt(second) + tau)


def server_step(
    owner: str, name: str, global_value: np.ndarray, aggregate: np.ndarray, state: State, update: Update
) -> np.ndarray:
    """The new global value of float tensor `name` from its aggregate; advances `state` (in place).

    Optimizer tensors pass through: they are averaged, not stepped.
    """
    if is_optimizer_tensor(name):
        return aggregate
    state_dtype, shape = np.result_type(global_value.dtype, np.float32), global_value.shape
    slots: Slots = {}
    for slot, arrays in state.items():
        current = arrays.get(name)
        if current is not None and current.shape != shape:
            raise ValueError(
                f"{owner}: state {slot}/{name} has shape {current.shape}, the tensor has {shape}"
            )
        slots[slot] = np.zeros(shape, np.float64) if current is None else current.astype(np.float64)
    # Computed in float64; stored in the tensor's precision (at least float32).
    new_value = update(global_value.astype(np.float64), aggregate.astype(np.float64), slots)
    for slot, value in slots.items():
        state[slot][name] = value.astype(state_dtype)
    # asarray: arithmetic on 0-d arrays gives NumPy scalars, and a tensor stays an array
    return np.asarray(new_value, dtype=global_value.dtype)


def load_state(owner: str, slots: tuple[str, ...], flat: Mapping[str, np.ndarray]) -> State:
    """The flat saved form as {slot: {name: array}} (arrays copied), or ValueError for a foreign key."""
    state: State = {slot: {} for slot in slots}
    for key, value in flat.items():
        slot, sep, name = key.partition("/")
        if not sep or slot not in state:
            raise ValueError(f"{owner}: unexpected state key {key!r} (slots: {slots})")
        state[slot][name] = np.array(value, copy=True)
    return state


def flat_state(state: State) -> dict[str, np.ndarray]:
    """The saved form of `state` (the arrays themselves, not copies)."""
    return {f"{slot}/{name}": value for slot, arrays in state.items() for name, value in arrays.items()}
