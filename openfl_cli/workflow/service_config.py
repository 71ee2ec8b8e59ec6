"""A participant's private attributes as a director's or an envoy's config names them.

Two spellings, as with the LocalRuntime's participants (the callable wins when both are given):
- `private_attributes: module.attribute`: a dict (or a callable returning one) in a module of the
  config's folder;
- `callable_func: {template: module.function, settings: {...}}`: the function, called with the settings.
The module is the operator's own code, next to the config: it is imported, never received.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from openfl_cli.errors import PlanError
from openfl_cli.plan.files import read_yaml, unknown_key_message
from openfl_cli.workflow.participants import Participant


@dataclass(frozen=True)
class PrivateAttributesSpec:
    file: str  # the config, for errors
    key: str  # its section: "aggregator", "env_one"
    folder: Path  # where the named modules live
    attribute: str | None = None  # module.attribute
    function: str | None = None  # module.function of callable_func
    settings: Mapping[str, Any] = field(default_factory=dict)

    def participant(self, name: str) -> Participant:
        """A participant whose private attributes this spec builds (once, on `initialize`)."""
        participant = Participant(name)
        if self.function is not None:
            key = f"{self.key}.callable_func.template"
            function = _resolve(self.function, self.folder, self.file, key)
            if not callable(function):
                raise PlanError(self.file, key, f"{self.function} is not callable")
            participant = Participant(name, function, **dict(self.settings))
        elif self.attribute is not None:
            key = f"{self.key}.private_attributes"
            value = _resolve(self.attribute, self.folder, self.file, key)
            if callable(value):
                participant = Participant(name, value)
            elif isinstance(value, Mapping):
                participant.private_attributes = dict(value)
            else:
                raise PlanError(
                    self.file,
                    key,
                    f"{self.attribute} is a {type(value).__name__}; expected a dict or a callable",
                )
        return participant


def read_config(path: str | Path) -> dict[str, Any]:
    """The YAML mapping of a director's or an envoy's config (read by `utils/safe_yaml.py`)."""
    path = Path(path)
    document = read_yaml(path, str(path))
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise PlanError(str(path), None, f"expected a mapping at the top, got {type(document).__name__}")
    return document


SPEC_KEYS = frozenset({"private_attributes", "callable_func"})


def private_attributes_spec(
    section: Any, file: str, key: str, folder: Path, other_keys: frozenset[str] = frozenset()
) -> PrivateAttributesSpec:
    """The spec of one participant's section (`aggregator:` or `env_one:`); None or {}: no attributes.
    `other_keys`: what else the section may hold (an envoy's `plan_review`)."""
    if section is None:
        return PrivateAttributesSpec(file, key, folder)
    if not isinstance(section, dict):
        raise PlanError(file, key, f"expected a mapping, got {type(section).__name__}")
    for name in section:
        if name not in SPEC_KEYS | other_keys:
            raise PlanError(file, f"{key}.{name}", unknown_key_message(str(name), SPEC_KEYS | other_keys))
    attribute = section.get("private_attributes")
    if attribute is not None and not _dotted(attribute):
        raise PlanError(file, f"{key}.private_attributes", f"expected module.attribute, got {attribute!r}")
    function: str | None = None
    settings: dict[str, Any] = {}
    callable_func = section.get("callable_func")
    if callable_func is not None:
        where = f"{key}.callable_func"
        if not isinstance(callable_func, dict) or not _dotted(callable_func.get("template")):
            raise PlanError(file, where, "expected {template: module.function, settings: {...}}")
        unknown = sorted(set(callable_func) - {"template", "settings"})
        if unknown:
            raise PlanError(file, f"{where}.{unknown[0]}", "unknown key; expected template, settings")
        function = str(callable_func["template"])
        raw_settings = callable_func.get("settings") or {}
        if not isinstance(raw_settings, dict) or not all(isinstance(k, str) for k in raw_settings):
            raise PlanError(file, f"{where}.settings", "expected a mapping of keyword arguments")
        settings = dict(raw_settings)
    return PrivateAttributesSpec(file, key, folder, attribute, function, settings)


def _dotted(value: Any) -> bool:
    return isinstance(value, str) and "." in value and all(part.isidentifier() for part in value.split("."))


def _resolve(dotted: str, folder: Path, file: str, key: str) -> Any:
    """`module.attribute`, the module taken from the config's folder under a name of its own (two
    configs in one process may both name a `private_attributes.py`); its own imports find its
    neighbours."""
    module_name, _, attribute = dotted.rpartition(".")
    source = folder.joinpath(*module_name.split(".")).with_suffix(".py")
    try:
        if source.is_file():
            module = _import_file(source)
        else:  # an installed module, or a package
            if str(folder) not in sys.path:
                sys.path.insert(0, str(folder))
            module = importlib.import_module(module_name)
    except Exception as error:  # the operator's module is broken: say which and why, in one line
        raise PlanError(file, key, f"cannot import {module_name}: {type(error).__name__}: {error}") from None
    if not hasattr(module, attribute):
        raise PlanError(file, key, f"module {module_name} has no attribute {attribute!r}")
    return getattr(module, attribute)


def _import_file(source: Path) -> ModuleType:
    name = f"fx_config_{hashlib.sha1(str(source).encode(), usedforsecurity=False).hexdigest()[:12]}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # pickle (Ray, checkpoints) finds the module's classes by this name
    if str(source.parent) not in sys.path:
        sys.path.append(str(source.parent))  # its own `import helpers` finds the config's folder
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
