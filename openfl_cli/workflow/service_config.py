"""A participant's private attributes as a director's or an envoy's config names them.

Two spellings, as with the LocalRuntime's participants (the callable wins when both are given):
- `private_attributes: module.attribute`: a dict (or a callable returning one) in a module of the
  config's folder;
- `callable_func: {template: module.function, settings: {...}}`: the function, called with the settings.
The module is the operator's own code, next to the config: it is imported, never received.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openfl_cli.errors import PlanError
from openfl_cli.plan.files import read_yaml
from openfl_cli.workflow.participants import Participant


@dataclass(frozen=True)
class PrivateAttributesSpec:
    where: str  # "envoy_config.yaml: env_one" for errors
    folder: Path  # where the named modules live
    attribute: str | None = None  # module.attribute
    function: str | None = None  # module.function of callable_func
    settings: Mapping[str, Any] = field(default_factory=dict)

    def participant(self, name: str) -> Participant:
        """A participant whose private attributes this spec builds (once, on `initialize`)."""
        participant = Participant(name)
        if self.function is not None:
            function = _resolve(self.function, self.folder, f"{self.where}.callable_func.template")
            if not callable(function):
                raise PlanError(self.where, "callable_func.template", f"{self.function} is not callable")
            participant = Participant(name, function, **dict(self.settings))
        elif self.attribute is not None:
            value = _resolve(self.attribute, self.folder, f"{self.where}.private_attributes")
            if callable(value):
                participant = Participant(name, value)
            elif isinstance(value, Mapping):
                participant.private_attributes = dict(value)
            else:
                raise PlanError(
                    self.where,
                    "private_attributes",
                    f"{self.attribute} is a {type(value).__name__}; expected a dict or a callable",
                )
        return participant


def read_config(path: str | Path) -> dict[str, Any]:
    """The YAML mapping of a director's or an envoy's config (`yaml.safe_load` only)."""
    path = Path(path)
    document = read_yaml(path, str(path))
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise PlanError(str(path), None, f"expected a mapping at the top, got {type(document).__name__}")
    return document


def private_attributes_spec(section: Any, where: str, folder: Path) -> PrivateAttributesSpec:
    """The spec of one participant's section (`aggregator:` or `env_one:`); None or {}: no attributes."""
    if section is None:
        return PrivateAttributesSpec(where, folder)
    if not isinstance(section, dict):
        raise PlanError(where, None, f"expected a mapping, got {type(section).__name__}")
    attribute = section.get("private_attributes")
    if attribute is not None and not _dotted(attribute):
        raise PlanError(where, "private_attributes", f"expected module.attribute, got {attribute!r}")
    function: str | None = None
    settings: dict[str, Any] = {}
    callable_func = section.get("callable_func")
    if callable_func is not None:
        if not isinstance(callable_func, dict) or not _dotted(callable_func.get("template")):
            raise PlanError(where, "callable_func", "expected {template: module.function, settings: {...}}")
        unknown = sorted(set(callable_func) - {"template", "settings"})
        if unknown:
            raise PlanError(where, f"callable_func.{unknown[0]}", "unknown key; expected template, settings")
        function = str(callable_func["template"])
        raw_settings = callable_func.get("settings") or {}
        if not isinstance(raw_settings, dict) or not all(isinstance(k, str) for k in raw_settings):
            raise PlanError(where, "callable_func.settings", "expected a mapping of keyword arguments")
        settings = dict(raw_settings)
    return PrivateAttributesSpec(where, folder, attribute, function, settings)


def _dotted(value: Any) -> bool:
    return isinstance(value, str) and "." in value and all(part.isidentifier() for part in value.split("."))


def _resolve(dotted: str, folder: Path, where: str) -> Any:
    module_name, _, attribute = dotted.rpartition(".")
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))  # the operator's modules live beside the config
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # the operator's module is broken: say which and why, in one line
        raise PlanError(
            where, None, f"cannot import {module_name}: {type(error).__name__}: {error}"
        ) from None
    if not hasattr(module, attribute):
        raise PlanError(where, None, f"module {module_name} has no attribute {attribute!r}")
    return getattr(module, attribute)
