"""The wire codec of a Workflow API flow's state, as a director, its envoys and the user send it.

A pickle runs whatever callables its stream names, so a state from a peer is never simply unpickled:
`load_state` admits only an allowlist of globals (plain Python values, NumPy's scalar types, PyTorch's
own modules, optimizers and schedulers, and the classes the receiver's experiment module defines) and
refuses anything else before importing it. What no allowlist could vouch for travels beside the pickle:

* arrays and tensors, as plain arrays (keys "0", "1", ...): weights are sent from where they lie, never
  copied into the pickle, and no rebuild function is named;
* NumPy dtypes, as their `.npy` description, and object arrays as their items: `numpy.ndarray(shape,
  object, buffer)` reads raw bytes as object pointers and a dtype's pickled state may overlap object
  fields, so neither `numpy.ndarray` nor `numpy.dtype` is admitted;
* the experiment's classes, as a qualname looked up only in the receiver's experiment module, whatever
  its name there (the user's `__main__.Net` is an envoy's `fx_experiment_ab12.Net`).

An object met twice (a Parameter in a model and in its optimizer) arrives as one object.
"""

from __future__ import annotations

import collections
import datetime
import decimal
import fractions
import io
import math
import pathlib
import pickle
import types
from collections.abc import Collection, Mapping
from typing import Any, BinaryIO

import numpy as np
from numpy.lib import format as npy_format

from openfl_cli.errors import SecurityError
from openfl_cli.runners import torch_wire

EXPERIMENT_MODULE = "fx_experiment"  # the module name experiment classes travel under

_PLAIN_KINDS = frozenset("biufcmMSUV")  # dtypes whose arrays are plain memory (not objects or pointers)
_ADMITTED = (
    "plain Python values, NumPy scalar types, PyTorch's own modules, optimizers and schedulers, "
    "and classes the experiment module defines"
)


class WireRefused(SecurityError):
    """A flow-state payload that names what the receiver does not admit, or that does not decode."""


def _refused(where: str, why: str = "not allowed") -> WireRefused:
    return WireRefused(f"the payload names {where}, which is {why} (allowed: {_ADMITTED})")


def _admitted_globals() -> dict[tuple[str, str], Any]:
    """(module, name) as pickle writes them -> the object, for the globals any payload may name."""
    values: list[Any] = [
        *(dict, list, tuple, set, frozenset, str, bytes, bytearray, int, float, complex, bool, slice, range),
        *(collections.OrderedDict, collections.defaultdict, collections.deque, collections.Counter),
        *(datetime.date, datetime.time, datetime.datetime, datetime.timedelta, datetime.timezone),
        *(decimal.Decimal, fractions.Fraction),
        *(pathlib.PurePosixPath, pathlib.PureWindowsPath, pathlib.PosixPath),
        *(v for v in vars(np.dtypes).values() if isinstance(v, type) and issubclass(v, np.dtype)),
    ]
    admitted = {(value.__module__, value.__qualname__): value for value in values}
    for name, value in vars(np).items():  # scalar types, by every name (numpy 1 writes numpy.bool_)
        if isinstance(value, type) and issubclass(value, np.generic):
            admitted[("numpy", name)] = value
    admitted[("builtins", "Ellipsis")] = Ellipsis
    admitted[("builtins", "NotImplemented")] = NotImplemented
    reduced: Any = np.float32(0).__reduce__()  # how NumPy rebuilds a scalar: from its dtype and bytes
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):  # numpy 1, numpy 2
        admitted[(module, "scalar")] = reduced[0]
    return admitted


_ADMITTED_GLOBALS = _admitted_globals()


class _StatePickler(pickle.Pickler):
    """Takes arrays, tensors, dtypes and experiment classes out of the pickle (see the module doc)."""

    def __init__(self, file: BinaryIO, experiment_modules: Collection[str]) -> None:
        super().__init__(file, protocol=5)
        self.arrays: dict[str, np.ndarray] = {}
        self._experiment_modules = frozenset(experiment_modules)
        self._tensor_type = torch_wire.tensor_type()
        self._sent: dict[int, tuple[Any, tuple[Any, ...]]] = {}  # id -> (object, kept alive; reference)
        self._dtypes: dict[np.dtype, tuple[str, Any]] = {}
        self._object_arrays = 0

    def persistent_id(self, obj: Any) -> Any:
        if isinstance(obj, type) and obj.__module__ in self._experiment_modules:
            if "<locals>" in obj.__qualname__:
                raise TypeError(f"cannot send {obj.__qualname__}: a class defined inside a function")
            return ("class", obj.__qualname__)
        if isinstance(obj, np.dtype):
            return self._dtype_reference(obj)
        if isinstance(obj, np.ndarray) or (self._tensor_type and isinstance(obj, self._tensor_type)):
            if id(obj) not in self._sent:
                self._sent[id(obj)] = (obj, self._array_reference(obj))
            return self._sent[id(obj)][1]
        if isinstance(obj, types.FunctionType) and obj.__module__ in self._experiment_modules:
            raise TypeError(f"cannot send {obj.__module__}.{obj.__qualname__}: functions do not travel")
        return None

    def _dtype_reference(self, dtype: np.dtype) -> tuple[str, Any]:
        if dtype not in self._dtypes:
            spec = npy_format.dtype_to_descr(dtype) if dtype.kind in _PLAIN_KINDS | {"O"} else None
            if spec is None or npy_format.descr_to_dtype(spec) != dtype:
                raise TypeError(f"cannot send the NumPy dtype {dtype!r}: it has no .npy description")
            self._dtypes[dtype] = ("dtype", spec)
        return self._dtypes[dtype]

    def _array_reference(self, obj: Any) -> tuple[Any, ...]:
        if not isinstance(obj, np.ndarray):
            array, meta = torch_wire.tensor_to_array(obj)
            return ("tensor", self._add(array), *meta)
        if type(obj) not in (np.ndarray, np.memmap):
            raise TypeError(f"cannot send a {type(obj).__qualname__}: only plain NumPy arrays travel")
        if obj.dtype == object:  # its items travel in the pickle, each through this pickler
            self._object_arrays += 1
            return ("objects", str(self._object_arrays - 1), obj.shape, obj.ravel().tolist())
        if obj.dtype.hasobject or obj.dtype.kind not in _PLAIN_KINDS:
            raise TypeError(f"cannot send an array of dtype {obj.dtype!r}: neither plain memory nor objects")
        return ("array", self._add(obj if obj.flags.c_contiguous else np.ascontiguousarray(obj)))

    def _add(self, array: np.ndarray) -> str:
        key = str(len(self.arrays))
        self.arrays[key] = np.asarray(array)
        return key


def _load_build_checked(unpickler: Any) -> None:
    """BUILD sets state on the object below it: refused on a class, which would change an admitted
    class (its methods, for every later use in this process) rather than build an instance."""
    if len(unpickler.stack) >= 2 and isinstance(unpickler.stack[-2], type):
        raise WireRefused(f"the payload sets attributes on the class {unpickler.stack[-2].__qualname__}")
    pickle._Unpickler.load_build(unpickler)  # type: ignore[attr-defined]


class _StateUnpickler(pickle._Unpickler):
    """Admits the allowlist and rebuilds what `_StatePickler` took out, each reference checked.

    The pure-Python unpickler, whose opcodes can be checked one by one (C's has no hook on BUILD):
    payloads are small, since every array travels beside them, so its speed does not matter here."""

    dispatch = {**pickle._Unpickler.dispatch, pickle.BUILD[0]: _load_build_checked}

    def __init__(
        self, file: BinaryIO, arrays: Mapping[str, np.ndarray], experiment: types.ModuleType | None
    ) -> None:
        super().__init__(file)
        self._arrays = arrays
        self._experiment = experiment
        self._loaded: dict[tuple[str, str], Any] = {}  # (kind, key) -> its one object

    def find_class(self, module: str, name: str) -> Any:
        admitted = _ADMITTED_GLOBALS.get((module, name))
        experiment = self._experiment
        if admitted is None and experiment is not None and module in (EXPERIMENT_MODULE, experiment.__name__):
            return self._experiment_class(name)
        if admitted is None and module.partition(".")[0] == "torch":
            admitted = torch_wire.admitted_global(module, name)
        if admitted is None:
            raise _refused(f"{module}.{name}")
        return admitted

    def persistent_load(self, pid: Any) -> Any:
        kind, key, *details = pid if isinstance(pid, tuple) and len(pid) >= 2 else (None, None)
        if kind == "dtype" and not details and type(key) in (str, list):
            try:
                return npy_format.descr_to_dtype(key)
            except Exception as error:
                raise WireRefused(f"the payload holds a malformed dtype {key!r:.80}") from error
        if type(kind) is not str or type(key) is not str:
            raise WireRefused(f"the payload holds a malformed reference {pid!r:.80}")
        if kind == "class" and not details:
            return self._experiment_class(key)
        if (kind, key) not in self._loaded:
            self._loaded[(kind, key)] = self._rebuild(kind, key, details)
        return self._loaded[(kind, key)]

    def _rebuild(self, kind: str, key: str, details: list[Any]) -> Any:
        if kind == "array" and not details:
            return self._array(key)
        tensor_types = [str, tuple, bool, bool]  # dtype name, shape, requires_grad, is a Parameter
        if kind == "tensor" and [type(part) for part in details] == tensor_types and _is_shape(details[1]):
            try:
                return torch_wire.tensor_from_array(self._array(key), *details)
            except ImportError as error:
                raise WireRefused("the payload holds tensors; PyTorch is not installed here") from error
            except ValueError as error:
                raise WireRefused(f"the payload's tensor {key!r} does not fit its array: {error}") from error
        if kind == "objects" and len(details) == 2 and _is_shape(details[0]) and type(details[1]) is list:
            shape, items = details
            if math.prod(shape) == len(items):
                flat = np.empty(len(items), dtype=object)
                for index, item in enumerate(items):  # one by one: a list item stays one object
                    flat[index] = item
                return flat.reshape(shape)
        raise WireRefused(f"the payload holds a malformed {kind!r} reference {key!r:.40}")

    def _array(self, key: str) -> np.ndarray:
        array = self._arrays.get(key)
        if not isinstance(array, np.ndarray) or array.dtype.hasobject or array.dtype.kind not in _PLAIN_KINDS:
            raise WireRefused(f"the payload names array {key!r}, which did not arrive as a plain array")
        if not (array.flags.writeable and array.flags.aligned):
            return array.copy()  # a flow writes into its state, never into a receive buffer
        return array

    def _experiment_class(self, qualname: str) -> type:
        """The class `qualname` defines in the experiment module: nothing it imports, no function."""
        if self._experiment is None:
            raise WireRefused(f"the payload names the experiment class {qualname}; no experiment is loaded")
        where = f"{self._experiment.__name__}.{qualname}"
        found: Any = self._experiment
        for part in qualname.split("."):
            if not part.isidentifier() or part.startswith("__"):  # no way out through __class__ & co
                raise _refused(where, "not a class name")
            found = getattr(found, part, None)
        if callable(found) and not isinstance(found, type):
            raise _refused(where, "a function: functions and lambdas do not travel")
        if not isinstance(found, type):
            raise _refused(where, "not a class")
        if found.__module__ != self._experiment.__name__ or found.__qualname__ != qualname:
            raise _refused(where, f"imported from {found.__module__}, not defined in the experiment")
        return found


def _is_shape(value: Any) -> bool:
    return type(value) is tuple and all(type(size) is int and size >= 0 for size in value)


def dump_state(
    state: Mapping[str, Any], experiment_modules: Collection[str] = ()
) -> tuple[bytes, dict[str, np.ndarray]]:
    """The state as a pickle payload and the arrays to send beside it. Classes whose `__module__` is
    one of `experiment_modules` travel as references into the receiver's experiment module. The
    arrays are views of the state's own memory where they can be: send them before it changes.
    Raises TypeError for what cannot travel (a function of the experiment, a tensor subclass, ...)."""
    if not all(isinstance(name, str) for name in state):
        raise TypeError("a flow state's attribute names must be strings")
    buffer = io.BytesIO()
    names = (experiment_modules,) if isinstance(experiment_modules, str) else experiment_modules
    pickler = _StatePickler(buffer, names)
    pickler.dump(dict(state))
    return buffer.getvalue(), pickler.arrays


def load_state(
    payload: bytes, arrays: Mapping[str, np.ndarray], experiment_module: types.ModuleType | None = None
) -> dict[str, Any]:
    """The state `dump_state` sent, its experiment classes taken from `experiment_module`. Arrays are
    used as they are given, or copied where they are read-only. Raises WireRefused, and runs nothing,
    where the payload names anything outside the allowlist; raises it too where it does not decode."""
    stream = io.BytesIO(payload)
    try:
        state = _StateUnpickler(stream, arrays, experiment_module).load()
    except WireRefused:
        raise
    except Exception as error:  # truncated or garbled: whatever pickle (or a __setstate__) raised
        raise WireRefused(f"the payload does not decode: {type(error).__name__}: {error}") from error
    if stream.tell() != len(payload):
        raise WireRefused("the payload goes on past the end of its pickle")
    if not isinstance(state, dict) or not all(isinstance(name, str) for name in state):
        raise WireRefused("the payload is not a flow state (a dict of attribute names)")
    return state
