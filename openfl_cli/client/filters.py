"""Filters a script runner applies to what it hands the script (task data) and what comes back (task
results), in the order the plan lists them.

A plan entry is `{"template": "dotted.Class", "settings": {...}}`, built as `Class(**settings)` when the
runner is built, so a bad entry fails when the plan loads. A filter is any object with
`process(model: FLModel, global_params: Mapping[str, numpy.ndarray]) -> FLModel`; it sees params as
NumPy arrays, and the global model read-only (it makes new arrays rather than changing those).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from openfl_cli.client.model import FLModel

_ENTRY_KEYS = frozenset(("template", "settings"))


class ModelFilter(Protocol):
    def process(self, model: FLModel, global_params: Mapping[str, np.ndarray]) -> FLModel: ...


def build_filters(entries: Iterable[Mapping[str, Any]] | None, setting: str, workspace: Path) -> list[Any]:
    """The filters of `entries`; ValueError naming `setting[index]` for an entry that does not build."""
    if entries is None:
        return []
    if isinstance(entries, (str, bytes, Mapping)):
        raise ValueError(f"{setting}: expected a list of {{template, settings}} entries")
    return [
        build_object(entry, f"{setting}[{index}]", workspace, "process")
        for index, entry in enumerate(entries)
    ]


def build_object(entry: Any, where: str, workspace: Path, method: str) -> Any:
    """`Class(**settings)` of a `{template, settings}` entry (`src.` templates come from `workspace`),
    checked to have `method`; ValueError naming `where` otherwise."""
    from openfl_cli.plan.templates import TemplateError, import_object

    if not isinstance(entry, Mapping) or "template" not in entry or set(entry) - _ENTRY_KEYS:
        raise ValueError(f"{where}: expected {{template: dotted.Class, settings: {{...}}}}, got {entry!r}")
    template, settings = entry["template"], entry.get("settings") or {}
    if not isinstance(template, str) or not isinstance(settings, Mapping):
        raise ValueError(f"{where}: template must be a dotted path and settings a mapping")
    try:
        target = import_object(template, workspace)
    except TemplateError as exc:
        raise ValueError(f"{where}: {exc}") from None
    # checked before the call: a plan must not turn an entry into any callable (`os.system`)
    if not inspect.isclass(target) or not callable(getattr(target, method, None)):
        found = "a class without it" if inspect.isclass(target) else f"a {type(target).__name__}, not a class"
        raise ValueError(f"{where}: expected a class with a {method}() method, got {template}: {found}")
    try:
        instance = target(**settings)
    except Exception as exc:
        raise ValueError(f"{where}: {template}(**settings) failed: {type(exc).__name__}: {exc}") from None
    if not callable(getattr(instance, method, None)):
        raise ValueError(f"{where}: {template} has no {method}() method")
    return instance


def apply_filters(
    filters: Sequence[ModelFilter], model: FLModel, global_params: Mapping[str, np.ndarray], what: str
) -> FLModel:
    """`model` through each filter in turn; TypeError if one returns anything but an FLModel."""
    for instance in filters:
        result = instance.process(model, global_params)
        if not isinstance(result, FLModel):
            raise TypeError(
                f"{what} filter {type(instance).__qualname__}.process returned {type(result).__name__},"
                " not an FLModel"
            )
        model = result
    return model


def read_only(params: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Views of `params` that refuse in-place changes (a filter must not change the global model)."""
    views: dict[str, np.ndarray] = {}
    for name, array in params.items():
        view = np.asarray(array).view()
        view.flags.writeable = False
        views[name] = view
    return views
