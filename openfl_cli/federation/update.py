"""The model update: what a task returns and a collaborator sends (weights, optimizer state, metrics).

Inside the program weights and optimizer state are kept apart. On the wire and in `.pbuf` snapshots
they travel as one flat name -> array mapping in which optimizer tensors carry `OPT_PREFIX`, the naming
OpenFL's snapshots use too, so snapshots stay interchangeable; `flat()` and `from_tensors()` are the
one place that convention is applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

OPT_PREFIX = "__opt__."


def is_optimizer_tensor(name: str) -> bool:
    """Whether a flat tensor name holds optimizer state rather than a model weight."""
    return name.startswith(OPT_PREFIX)


def split_tensors(
    tensors: Mapping[str, np.ndarray],
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """A flat mapping as (weights, optimizer state), the optimizer names without their prefix."""
    weights: dict[str, np.ndarray] = {}
    optimizer: dict[str, np.ndarray] = {}
    for name, array in tensors.items():
        if is_optimizer_tensor(name):
            optimizer[name[len(OPT_PREFIX) :]] = array
        else:
            weights[name] = array
    return weights, optimizer


@dataclass
class ModelUpdate:
    """One task's outcome. `weights` and `optimizer_state` are empty for a validation; `is_delta`
    says the weights are differences from the model the round started with; `round_number` is None
    until the collaborator stamps the round it worked on."""

    metrics: dict[str, float]
    sample_count: int
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    optimizer_state: dict[str, np.ndarray] = field(default_factory=dict)
    is_delta: bool = False
    round_number: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.sample_count, bool) or int(self.sample_count) != self.sample_count:
            raise ValueError(f"sample_count must be an integer, got {self.sample_count!r}")
        if self.sample_count < 0:
            raise ValueError(f"sample_count must be >= 0, got {self.sample_count}")
        self.sample_count = int(self.sample_count)
        self.metrics = {str(name): float(value) for name, value in self.metrics.items()}
        clash = sorted(name for name in self.weights if is_optimizer_tensor(name))
        if clash:
            raise ValueError(f"weight names may not start with {OPT_PREFIX!r}: {clash}")

    @classmethod
    def from_tensors(
        cls,
        tensors: Mapping[str, np.ndarray],
        metrics: Mapping[str, float],
        sample_count: int,
        round_number: int | None = None,
    ) -> ModelUpdate:
        """An update from a runner's flat `get_tensor_dict(with_opt_vars=True)`."""
        weights, optimizer = split_tensors(tensors)
        return cls(dict(metrics), sample_count, weights, optimizer, round_number=round_number)

    @property
    def has_tensors(self) -> bool:
        return bool(self.weights or self.optimizer_state)

    @property
    def tensors(self) -> dict[str, np.ndarray]:
        """Weights and optimizer state as one flat mapping (the on-disk and wire naming)."""
        return self.flat(with_optimizer=True)

    def flat(self, *, with_optimizer: bool) -> dict[str, np.ndarray]:
        flat = dict(self.weights)
        if with_optimizer:
            flat.update({OPT_PREFIX + name: array for name, array in self.optimizer_state.items()})
        return flat

    def delta_from(self, base: Mapping[str, np.ndarray]) -> ModelUpdate:
        """This update as differences from `base` (flat names, as the global model is kept)."""
        import numpy as np

        if self.is_delta:
            return self

        def minus(name: str, array: np.ndarray) -> np.ndarray:
            received = base.get(name)
            if received is None or array.dtype.kind == "b":
                raise ValueError(
                    f"tensor {name!r}: cannot send a delta (no global value or a boolean tensor)"
                )
            return np.subtract(array, received, dtype=array.dtype)

        weights = {name: minus(name, array) for name, array in self.weights.items()}
        optimizer = {name: minus(OPT_PREFIX + name, array) for name, array in self.optimizer_state.items()}
        return replace(self, weights=weights, optimizer_state=optimizer, is_delta=True)
