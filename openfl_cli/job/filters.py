"""Filters: what a client changes in the model it receives (task data) or sends back (task result).

A filter is exported by class path and constructor arguments; the site's runner builds it as
`Class(**settings)` and calls `process(model, global_params)` on the `FLModel` going to the script
(its `task_data_filters`) and on the one coming back (`task_result_filters`); `global_params` are the
global model's arrays of this round. A filter whose behaviour depends on the direction takes a
`filter_type` argument: `job.to(..., filter_type=...)` exports it with the direction it was sent for.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import TYPE_CHECKING

import numpy as np

from openfl_cli.job.arguments import KeepsArguments

if TYPE_CHECKING:
    from openfl_cli.client import FLModel

log = logging.getLogger(__name__)


class FilterType(str, Enum):
    """Which way a filter is applied: on the task data (server -> script) or the task result."""

    TASK_DATA = "task_data"
    TASK_RESULT = "task_result"


class Filter(KeepsArguments, ABC):
    """Base of filters: subclasses implement `process`. `allowed_types` are the directions it may be
    sent for (`job.to` checks); one that takes a `filter_type` argument gets the direction it was sent
    for in its exported settings."""

    allowed_types: tuple[FilterType, ...] = (FilterType.TASK_DATA, FilterType.TASK_RESULT)

    @abstractmethod
    def process(self, model: FLModel, global_params: Mapping[str, np.ndarray]) -> FLModel:
        """Return the filtered model (a new one: neither the given model nor the global arrays change)."""


def _direction(filter_type: FilterType | str | None, name: str) -> FilterType | None:
    if filter_type is None:
        return None
    try:
        return FilterType(filter_type)
    except ValueError:
        raise ValueError(
            f"{name}: filter_type must be FilterType.TASK_DATA or FilterType.TASK_RESULT, got {filter_type!r}"
        ) from None


def _is_diff(model: FLModel) -> bool:
    kind = model.params_type
    return getattr(kind, "value", kind) == "DIFF"


class ExcludeVars(Filter):
    """Keeps variables out of the exchange.

    `exclude_vars` is a list of variable names, or a regular expression (a string) that excluded
    names contain (`re.search`).

    - As a task data filter, the script does not receive the excluded variables.
    - As a task result filter, the excluded variables are sent back unchanged: set to the global
      values (zero for a DIFF result). They are not dropped, because the aggregator averages complete
      models; what the site computed for them does not leave it.

    `filter_type` is the direction; `job.to(..., filter_type=...)` sets it in the export.
    """

    def __init__(
        self, exclude_vars: list[str] | str | None = None, filter_type: FilterType | str | None = None
    ) -> None:
        self.filter_type = _direction(filter_type, "ExcludeVars")
        if exclude_vars is None:
            exclude_vars = []
        if isinstance(exclude_vars, str):
            try:
                self._pattern: re.Pattern[str] | None = re.compile(exclude_vars)
            except re.error as error:
                raise ValueError(
                    f"ExcludeVars: invalid regular expression {exclude_vars!r}: {error}"
                ) from None
            self._names: frozenset[str] = frozenset()
        elif isinstance(exclude_vars, Sequence) and all(isinstance(name, str) for name in exclude_vars):
            self._pattern = None
            self._names = frozenset(exclude_vars)
            exclude_vars = list(exclude_vars)
        else:
            raise ValueError(
                f"ExcludeVars: exclude_vars must be a list of names or a regex, got {exclude_vars!r}"
            )
        self.exclude_vars = exclude_vars

    def excluded(self, name: str) -> bool:
        if self._pattern is not None:
            return self._pattern.search(name) is not None
        return name in self._names

    def process(self, model: FLModel, global_params: Mapping[str, np.ndarray]) -> FLModel:
        if self.filter_type is None:
            raise RuntimeError(
                "ExcludeVars: no filter_type, so it cannot tell task data from task results; give"
                " filter_type (job.to(..., filter_type=...) does in an export)"
            )
        params = dict(model.params or {})
        if self.filter_type is FilterType.TASK_DATA:
            kept = {name: value for name, value in params.items() if not self.excluded(name)}
            log.debug("ExcludeVars: %d variables kept from the script", len(params) - len(kept))
            return dataclasses.replace(model, params=kept)
        diff = _is_diff(model)
        for name in [*params, *(key for key in global_params if key not in params)]:
            if self.excluded(name) and name in global_params:
                reference = np.asarray(global_params[name])
                params[name] = np.zeros_like(reference) if diff else reference.copy()
        return dataclasses.replace(model, params=params)


class PercentilePrivacy(Filter):
    """Differential privacy after Shokri & Shmatikov, "Privacy-preserving deep learning" (CCS 2015).

    On the update (result - global, or the result itself when it is a DIFF), every floating-point value
    whose absolute value is below the `percentile`-th percentile of all of them is zeroed; those kept
    are clipped to [-gamma, gamma]. A FULL result becomes global + the filtered update. Integer
    variables (counters) pass unchanged. A task result filter only.
    """

    allowed_types = (FilterType.TASK_RESULT,)

    def __init__(self, percentile: float = 10, gamma: float = 0.01) -> None:
        if (
            isinstance(percentile, bool)
            or not isinstance(percentile, (int, float))
            or not 0 <= percentile <= 100
        ):
            raise ValueError(f"PercentilePrivacy: percentile must be in [0, 100], got {percentile!r}")
        if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not gamma > 0:
            raise ValueError(f"PercentilePrivacy: gamma must be a number > 0, got {gamma!r}")
        self.percentile = percentile
        self.gamma = gamma

    def process(self, model: FLModel, global_params: Mapping[str, np.ndarray]) -> FLModel:
        params = dict(model.params or {})
        diff_given = _is_diff(model)
        updates: dict[str, np.ndarray] = {}
        for name, value in params.items():
            array = np.asarray(value)
            if not np.issubdtype(array.dtype, np.floating):
                continue
            if diff_given:
                updates[name] = array.astype(np.float64)
                continue
            if name not in global_params:
                raise ValueError(
                    f"PercentilePrivacy: {name!r} has no global value to take the difference from"
                )
            updates[name] = array.astype(np.float64) - np.asarray(global_params[name], dtype=np.float64)
        if not updates:
            return dataclasses.replace(model, params=params)
        magnitudes = np.concatenate([np.abs(update).ravel() for update in updates.values()])
        cutoff = np.percentile(magnitudes, self.percentile) if magnitudes.size else 0.0
        for name, update in updates.items():
            filtered = np.where(np.abs(update) >= cutoff, np.clip(update, -self.gamma, self.gamma), 0.0)
            dtype = np.asarray(params[name]).dtype
            if diff_given:
                params[name] = filtered.astype(dtype)
            else:
                params[name] = (np.asarray(global_params[name], dtype=np.float64) + filtered).astype(dtype)
        return dataclasses.replace(model, params=params)
