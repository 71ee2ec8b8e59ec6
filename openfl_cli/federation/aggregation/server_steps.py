"""Server optimizer steps as pure functions: (global model, aggregate, state) -> (new model, new state),
with the arithmetic, defaults and state format of the streaming FedAvgM / FedAdam (`_server_math`).

`state` is the flat form of `FedAvgM.state_dict()` ({"velocity/<tensor>": array}; FedAdam: "m/", "v/"),
so a state can move between these functions and the classes. Nothing given is mutated; tensors that are
not stepped (absent from the aggregate, non-float, optimizer tensors) come back as the given arrays.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

import numpy as np

from openfl_cli.federation.aggregation import _server_math as sm
from openfl_cli.federation.aggregation.base import is_float_tensor

Model = Mapping[str, np.ndarray]
State = Mapping[str, np.ndarray]


def fedavgm_step(
    global_model: Model,
    aggregate: Model,
    state: State | None = None,
    *,
    server_learning_rate: float = 1.0,
    momentum: float = 0.9,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """One FedAvgM round: v = momentum * v + (global - aggregate); new = global - lr * v."""
    update = partial(
        sm.fedavgm_update,
        server_learning_rate=sm.check_learning_rate(server_learning_rate),
        momentum=sm.check_unit("momentum", momentum),
    )
    return _step("fedavgm_step", sm.FEDAVGM_SLOTS, global_model, aggregate, state, update)


def fedadam_step(
    global_model: Model,
    aggregate: Model,
    state: State | None = None,
    *,
    server_learning_rate: float = 0.01,
    beta1: float = 0.9,
    beta2: float = 0.99,
    tau: float = 1e-3,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """One FedAdam round (no bias correction): d = aggregate - global; m = b1 m + (1 - b1) d;
    v = b2 v + (1 - b2) d^2; new = global + lr m / (sqrt(v) + tau)."""
    update = partial(
        sm.fedadam_update,
        server_learning_rate=sm.check_learning_rate(server_learning_rate),
        beta1=sm.check_unit("beta1", beta1),
        beta2=sm.check_unit("beta2", beta2),
        tau=sm.check_tau(tau),
    )
    return _step("fedadam_step", sm.FEDADAM_SLOTS, global_model, aggregate, state, update)


def _step(
    owner: str,
    slots: tuple[str, ...],
    global_model: Model,
    aggregate: Model,
    state: State | None,
    update: sm.Update,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    nested = sm.load_state(owner, slots, state or {})  # copies: the caller's state stays as it was
    unknown = [name for name in aggregate if name not in global_model]
    if unknown:
        raise ValueError(f"{owner}: tensor {unknown[0]!r} of the aggregate is not in the global model")
    new_model: dict[str, np.ndarray] = {}
    for name, global_value in global_model.items():
        if name not in aggregate:
            new_model[name] = global_value  # nobody contributed: kept, and its state does not advance
            continue
        value = _checked(owner, name, aggregate[name], np.asarray(global_value))
        if is_float_tensor(value):
            value = sm.server_step(owner, name, np.asarray(global_value), value, nested, update)
        new_model[name] = value
    return new_model, sm.flat_state(nested)


def _checked(owner: str, name: str, value: np.ndarray, global_value: np.ndarray) -> np.ndarray:
    where = f"{owner}: tensor {name!r}"
    if not isinstance(value, np.ndarray):
        raise ValueError(f"{where} of the aggregate is a {type(value).__name__}, not an array")
    if value.shape != global_value.shape:
        raise ValueError(
            f"{where} has shape {value.shape} in the aggregate, {global_value.shape} in the model"
        )
    if value.dtype != global_value.dtype:
        raise ValueError(
            f"{where} has dtype {value.dtype} in the aggregate, {global_value.dtype} in the model"
        )
    return value
