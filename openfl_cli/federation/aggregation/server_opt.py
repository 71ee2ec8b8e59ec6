"""Server optimizers (Reddi et al., "Adaptive Federated Optimization"): the weighted average gives a
pseudo-gradient (global - average) that a server-side optimizer applies, with state that survives
rounds and is saved by the aggregator through `state_dict`. The arithmetic is in `_server_math`,
shared with the pure `fedavgm_step` / `fedadam_step`.

Optimizer tensors sent by collaborators (names starting with `__opt__.`) are averaged, not stepped.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from openfl_cli.federation.aggregation import _server_math as sm
from openfl_cli.federation.aggregation.average import WeightedAverage


class _ServerOptimizer(WeightedAverage):
    """Keeps named state slots per tensor, e.g. {"velocity": {tensor: array}}."""

    slots: tuple[str, ...] = ()

    def __init__(self, server_learning_rate: float) -> None:
        super().__init__()
        self.server_learning_rate = sm.check_learning_rate(server_learning_rate)
        self._state: sm.State = {slot: {} for slot in self.slots}

    def state_dict(self) -> dict[str, np.ndarray]:
        return {key: value.copy() for key, value in sm.flat_state(self._state).items()}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        self._state = sm.load_state(type(self).__name__, self.slots, state)

    def _server_step(self, name: str, global_value: np.ndarray, aggregate: np.ndarray) -> np.ndarray:
        return sm.server_step(type(self).__name__, name, global_value, aggregate, self._state, self._step)

    def _step(
        self, global_value: np.ndarray, average: np.ndarray, slots: dict[str, np.ndarray]
    ) -> np.ndarray:
        """Update `slots` in place and return the new global value (all float64)."""
        raise NotImplementedError


class FedAvgM(_ServerOptimizer):
    """Server momentum: v = momentum * v + (global - average); new = global - lr * v."""

    slots = sm.FEDAVGM_SLOTS

    def __init__(self, server_learning_rate: float = 1.0, momentum: float = 0.9) -> None:
        super().__init__(server_learning_rate)
        self.momentum = sm.check_unit("momentum", momentum)

    def _step(
        self, global_value: np.ndarray, average: np.ndarray, slots: dict[str, np.ndarray]
    ) -> np.ndarray:
        return sm.fedavgm_update(global_value, average, slots, self.server_learning_rate, self.momentum)


class FedAdam(_ServerOptimizer):
    """Adam on the server, without bias correction (as in the paper):
    d = average - global; m = b1 m + (1 - b1) d; v = b2 v + (1 - b2) d^2;
    new = global + lr m / (sqrt(v) + tau).
    """

    slots = sm.FEDADAM_SLOTS

    def __init__(
        self,
        server_learning_rate: float = 0.01,
        beta1: float = 0.9,
        beta2: float = 0.99,
        tau: float = 1e-3,
    ) -> None:
        super().__init__(server_learning_rate)
        self.beta1 = sm.check_unit("beta1", beta1)
        self.beta2 = sm.check_unit("beta2", beta2)
        self.tau = sm.check_tau(tau)

    def _step(
        self, global_value: np.ndarray, average: np.ndarray, slots: dict[str, np.ndarray]
    ) -> np.ndarray:
        return sm.fedadam_update(
            global_value, average, slots, self.server_learning_rate, self.beta1, self.beta2, self.tau
        )
