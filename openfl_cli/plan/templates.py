"""Importing template classes (`a.b.C`) and checking plan settings against their constructors.

`src.` templates live in the workspace: its folder goes on `sys.path` only for the import, and a
`src` package already imported from another workspace in this process is dropped first so it is
never reused by mistake.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from openfl_cli.plan.files import did_you_mean, unknown_key_message
from openfl_cli.runners.frameworks import install_hint, tensorflow_import

WORKSPACE_PACKAGE = "src"


class TemplateError(ValueError):
    """A template that cannot be imported or called with the given settings; `key` is the bad setting."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


def _module_folder(module: Any) -> list[Path]:
    paths = list(getattr(module, "__path__", None) or [])
    file = getattr(module, "__file__", None)
    if file:
        paths.append(Path(file).parent)
    return [Path(p).resolve() for p in paths]


def _forget_stale(top: str, workspace: Path) -> None:
    existing = sys.modules.get(top)
    if existing is None:
        return
    home = (workspace / top).resolve()
    if home in _module_folder(existing):
        return
    for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
        del sys.modules[name]


def import_object(template: str, workspace: Path) -> Any:
    """Import `a.b.C` and return C; `src.*` comes from `workspace`."""
    module_name, _, attribute = template.rpartition(".")
    if not module_name or not attribute:
        raise TemplateError(f"template {template!r} is not a dotted path like 'package.module.Class'")
    from_workspace = module_name.split(".")[0] == WORKSPACE_PACKAGE
    try:
        if from_workspace:
            module = _import_from(module_name, workspace.resolve())
        else:
            module = importlib.import_module(module_name)
    except ImportError as error:
        where = f" from the workspace {workspace}" if from_workspace else ""
        hint = install_hint(error.name) or _module_hint(
            module_name, error, workspace.resolve() if from_workspace else None
        )
        raise TemplateError(f"cannot import {module_name!r}{where}: {error}{hint}") from None
    except Exception as error:  # user code failing at import time: show it as a plan problem
        raise TemplateError(f"importing {module_name!r} failed: {type(error).__name__}: {error}") from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        hint = did_you_mean(attribute, _class_names(module))
        raise TemplateError(f"module {module_name!r} has no attribute {attribute!r}{hint}") from None


def _class_names(module: Any) -> list[str]:
    """The public classes a module defines or exports (what a template may name)."""
    return [name for name, value in vars(module).items() if inspect.isclass(value) and name[:1] != "_"]


def _module_hint(module_name: str, error: ImportError, workspace: Path | None) -> str:
    """' (did you mean ...?)' over the modules beside the one that is missing, when its package exists."""
    missing = getattr(error, "name", None)
    if not isinstance(error, ModuleNotFoundError) or not missing or "." not in missing:
        return ""
    if not module_name.startswith(missing):  # the template's module imports something else that is missing
        return ""
    parent = missing.rpartition(".")[0]
    try:
        package = _import_from(parent, workspace) if workspace else importlib.import_module(parent)
    except Exception:  # the package itself is missing or broken: nothing to offer
        return ""
    siblings = [f"{parent}.{info.name}" for info in pkgutil.iter_modules(getattr(package, "__path__", []))]
    return did_you_mean(missing, siblings)


def _import_from(module_name: str, workspace: Path) -> Any:
    _forget_stale(WORKSPACE_PACKAGE, workspace)
    entry = str(workspace)
    sys.path.insert(0, entry)
    try:
        importlib.invalidate_caches()
        with tensorflow_import():  # workspace code may load TensorFlow (through Keras) first
            return importlib.import_module(module_name)
    finally:
        # remove only our own entry (user code may have added others)
        if entry in sys.path:
            sys.path.remove(entry)


def check_call(target: Any, template: str, settings: Mapping[str, Any], injected: Iterable[str] = ()) -> None:
    """Raise TemplateError when `target(**injected, **settings)` would not bind.

    `injected` are the arguments the plan passes itself (like `data_path`); they are not settings.
    """
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return  # builtins and C types: nothing to check against
    params = signature.parameters
    takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    named = {
        name
        for name, p in params.items()
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    injected = set(injected)
    for key in settings:
        if key in injected:
            raise TemplateError(f"is set by fx itself and cannot be a setting of {template}", key)
        if key not in named and not takes_kwargs:
            accepted = named - injected
            raise TemplateError(f"{template}: {unknown_key_message(key, accepted, 'argument')}", key)
    missing = [
        name
        for name, p in params.items()
        if p.default is inspect.Parameter.empty
        and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        and name not in settings
        and name not in injected
    ]
    if missing:
        raise TemplateError(f"{template} needs {', '.join(repr(m) for m in missing)}: add it to the settings")


def accepted_injections(target: Any, offered: Mapping[str, Any]) -> dict[str, Any]:
    """The subset of `offered` arguments that `target` names (all of them when it takes **kwargs)."""
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return {}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(offered)
    return {name: value for name, value in offered.items() if name in params}
