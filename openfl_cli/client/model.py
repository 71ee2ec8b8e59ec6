"""`FLModel`: what a training script receives and sends, one small validated data class.

The script and the task runner agree on nothing else: the runner hands the script the global model
as an `FLModel` and the script answers with one. Validation happens here, when the object is made, so
a mistake in a script is reported at the line that made it and not rounds later on the aggregator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from numbers import Integral, Real
from typing import Any


class ParamsType(str, Enum):
    """Whether `FLModel.params` are whole weights or differences from the model that was received."""

    FULL = "FULL"
    DIFF = "DIFF"


@dataclass
class FLModel:
    """Model weights (in the script's framework type), their kind, metrics, the round and metadata.

    `params_type` defaults to FULL when `params` are given; `meta` carries what travels beside the
    model (the runner reads the sample count from `NUM_STEPS_CURRENT_ROUND` or `sample_count`).
    """

    params: dict[str, Any] | None = None
    params_type: ParamsType | str | None = None
    optimizer_params: dict[str, Any] | None = None
    metrics: dict[str, float] | None = None
    current_round: int | None = None
    total_rounds: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_named("params", self.params)
        _check_named("optimizer_params", self.optimizer_params)
        self.params_type = _params_type(self.params_type, self.params is not None)
        self.metrics = _metrics(self.metrics)
        self.current_round = _round("current_round", self.current_round)
        self.total_rounds = _round("total_rounds", self.total_rounds)
        if not isinstance(self.meta, dict):
            raise ValueError(f"FLModel.meta must be a dict, got {type(self.meta).__name__}")
        _check_named("meta", self.meta)


def _check_named(name: str, value: dict[str, Any] | None) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise ValueError(f"FLModel.{name} must be a dict or None, got {type(value).__name__}")
    bad = [key for key in value if not isinstance(key, str)]
    if bad:
        raise ValueError(f"FLModel.{name} keys must be strings, got {bad[:3]!r}")


def _params_type(value: ParamsType | str | None, has_params: bool) -> ParamsType | None:
    if value is None:
        return ParamsType.FULL if has_params else None
    try:
        return ParamsType(value)
    except ValueError:
        raise ValueError(
            f"FLModel.params_type must be one of {[kind.value for kind in ParamsType]}, got {value!r}"
        ) from None


def _metrics(metrics: dict[str, float] | None) -> dict[str, float] | None:
    if metrics is None:
        return None
    if not isinstance(metrics, dict):
        raise ValueError(f"FLModel.metrics must be a dict or None, got {type(metrics).__name__}")
    checked: dict[str, float] = {}
    for name, value in metrics.items():
        if not isinstance(name, str):
            raise ValueError(f"FLModel.metrics keys must be strings, got {name!r}")
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
            raise ValueError(f"FLModel.metrics[{name!r}] must be a finite number, got {value!r}")
        checked[name] = float(value)
    return checked


def _round(name: str, value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 0:
        raise ValueError(f"FLModel.{name} must be a non-negative integer or None, got {value!r}")
    return int(value)
