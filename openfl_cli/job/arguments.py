"""Recovering an object's constructor arguments, so that it can be rebuilt on another machine from its
class path and settings.

FLARE reads the arguments back from attributes of the same name and silently drops those it cannot
find, so an exported job may differ from the one the user wrote. Here an argument that cannot be
recovered is an error at `job.to()`, unless it is known to be left at its default: the base classes of
this package (`KeepsArguments`) record which arguments a constructor was called with; for any other
class every argument must be recoverable.

Values must be what YAML holds (numbers, strings, booleans, None, lists, mappings with string keys);
tuples become lists and enums their values.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from enum import Enum
from pathlib import PurePath
from typing import Any

from openfl_cli.errors import UsageError

_GIVEN = "_fedjob_given_arguments"
_MISSING = object()


class KeepsArguments:
    """Records the arguments each instance was constructed with (by name), so the job can tell an
    argument left at its default from one that was given but not kept as an attribute.

    `__new__` sees the same arguments as `__init__`: subclasses need to do nothing.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        instance = super().__new__(cls)
        try:
            bound = inspect.signature(cls.__init__).bind(instance, *args, **kwargs)
        except (TypeError, ValueError):
            given = None  # __init__ itself will raise; nothing to record
        else:
            given = {name: value for name, value in list(bound.arguments.items())[1:]}
        instance.__dict__[_GIVEN] = given
        return instance


def given_arguments(obj: Any) -> dict[str, Any] | None:
    """The arguments `obj` was constructed with, when its class records them (None: unknown)."""
    given = getattr(obj, "__dict__", {}).get(_GIVEN)
    return dict(given) if isinstance(given, dict) else None


def _init_parameters(cls: type) -> dict[str, inspect.Parameter]:
    """The parameters of `cls.__init__` after `self` (none when it has no signature)."""
    init = getattr(cls, "__init__", None)
    try:
        parameters = list(inspect.signature(init).parameters.values())[1:] if init else []
    except (TypeError, ValueError):
        parameters = []
    return {parameter.name: parameter for parameter in parameters}


def takes_argument(cls: type, name: str) -> bool:
    """Whether `cls(name=...)` is a named argument of its constructor."""
    try:
        parameter = _init_parameters(cls).get(name)
    except (TypeError, ValueError):
        return False
    return parameter is not None and parameter.kind in (
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.KEYWORD_ONLY,
    )


def constructor_settings(obj: Any, convert: Callable[[str, Any], Any] | None = None) -> dict[str, Any]:
    """`obj`'s constructor arguments, read back from attributes named like them (or `_`-prefixed).

    `convert(argument, value)` may replace values (component references); then each value is checked to
    be YAML-safe. Raises UsageError naming the class and the argument.
    """
    cls = type(obj)
    parameters = list(_init_parameters(cls).values())
    given = given_arguments(obj)
    settings: dict[str, Any] = {}
    for parameter in parameters:
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            extra = given.get(parameter.name) if given is not None else None
            if extra:
                raise UsageError(
                    f"{cls.__name__}(*{parameter.name}): positional arguments beyond the named ones cannot"
                    " be exported; make them named arguments kept as attributes"
                )
            continue
        names = (
            list((given or {}).get(parameter.name, {}))
            if parameter.kind is inspect.Parameter.VAR_KEYWORD
            else [parameter.name]
        )
        for name in names:
            value = _attribute(obj, name)
            if value is _MISSING:
                if _left_at_default(parameter, name, given):
                    continue
                raise UsageError(
                    f"{cls.__name__}({name}=...): the argument {name!r} is not kept as an attribute of the"
                    f" same name, so the job cannot be exported; keep it as self.{name}"
                )
            if convert is not None:
                value = convert(name, value)
            settings[name] = yaml_safe(value, f"{cls.__name__}({name}=...)")
    return settings


def _attribute(obj: Any, name: str) -> Any:
    for candidate in (name, f"_{name}"):
        try:
            return getattr(obj, candidate)
        except AttributeError:
            continue
        except Exception:  # a property that fails: not recoverable
            continue
    return _MISSING


def _left_at_default(parameter: inspect.Parameter, name: str, given: dict[str, Any] | None) -> bool:
    """Known to be at its default: the class records its arguments and this one was not given (or was
    given its default value). Unknown classes get no benefit of the doubt."""
    if given is None or parameter.kind is inspect.Parameter.VAR_KEYWORD:
        return False
    if parameter.name not in given:
        return parameter.default is not inspect.Parameter.empty
    if parameter.default is inspect.Parameter.empty:
        return False
    try:
        return bool(given[parameter.name] == parameter.default)
    except Exception:
        return False


def yaml_safe(value: Any, where: str) -> Any:
    """`value` as plain YAML data (lists for tuples, enum values for enums); UsageError naming `where`
    for anything else."""
    if value is None or type(value) in (bool, int, str):
        return value
    if isinstance(value, Enum):
        return yaml_safe(value.value, where)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return yaml_safe(value.item(), where)  # a NumPy scalar: a plain number
    if isinstance(value, str):
        return "".join(value)  # a plain str (YAML's safe dumper refuses subclasses)
    if isinstance(value, (list, tuple)):
        return [yaml_safe(item, where) for item in value]
    if isinstance(value, Mapping):
        result: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise UsageError(f"{where}: mapping keys must be strings to be exported, got {key!r}")
            result["".join(key)] = yaml_safe(item, where)
        return result
    if isinstance(value, PurePath):
        hint = "; give the path as a str"
    elif isinstance(value, (set, frozenset, bytes, bytearray, complex)):
        hint = ""
    else:
        hint = "; to refer to another object, pass job.as_id(obj)"
    raise UsageError(
        f"{where}: a value of type {type(value).__name__} cannot be exported (expected numbers, strings,"
        f" booleans, None, lists, mappings or component ids){hint}"
    )
