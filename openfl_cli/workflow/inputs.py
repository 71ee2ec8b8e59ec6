"""A join's inputs, kept compactly: what each collaborator sent is held in memory up to a budget, and
past it an input's large attributes go to a file (one per input, so objects they share stay shared) and
are read back each time a step reads one of them (never kept), so
that a join that folds one input at a time (`fedavg`) holds one collaborator's model at a time, however
many collaborators there are.

The files are written and read by this process only, in a private folder (mode 0700) removed when the
join step ends. Arrays, and mappings of arrays, go through the project's tensor codec (a small JSON
header, then each tensor's raw bytes); other objects (a PyTorch model, an optimizer) have no common
format but Python's pickle, which is used for them: nothing read here ever came from another machine.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from openfl_cli.tensors.codec import array_bytes, array_from_buffer, dtype_name

SPILL_MIN_BYTES = 1 << 20  # attributes smaller than this always stay in memory


class FlowInput:
    """One collaborator's attributes as a join sees them (`input.model`; `input.input` is its name)."""

    def __init__(
        self,
        state: Mapping[str, Any],
        objects: Path | None = None,
        names: tuple[str, ...] = (),
        arrays: Mapping[str, Path] | None = None,
    ) -> None:
        self.__dict__.update(state)
        object.__setattr__(self, "_fx_spill", (objects, names, dict(arrays or {})))

    def __getattr__(self, name: str) -> Any:
        objects, names, arrays = self.__dict__.get("_fx_spill", (None, (), {}))
        path = arrays.get(name) or (objects if name in names else None)
        if path is None:
            raise AttributeError(f"this collaborator sent no attribute {name!r}")
        if not path.exists():
            raise AttributeError(f"{name}: a join's inputs can be read during the join step only")
        if name in arrays:
            return _read_arrays(path)
        with path.open("rb") as handle:
            spilled: dict[str, Any] = pickle.load(handle)  # this process wrote it (see the module's doc)
        return spilled[name]

    def __dir__(self) -> list[str]:
        _, names, arrays = self.__dict__.get("_fx_spill", (None, (), {}))
        return sorted({*super().__dir__(), *names, *arrays})

    def __repr__(self) -> str:
        return f"FlowInput({self.__dict__.get('input', '?')!r})"


class InputStore:
    """Collects the inputs of one join, spilling past `memory_budget` bytes."""

    def __init__(self, memory_budget: int) -> None:
        self.memory_budget = memory_budget
        self.in_memory = 0
        self.spilled_bytes = 0
        self._folder: Path | None = None
        self._inputs: list[FlowInput] = []

    def add(self, state: dict[str, Any]) -> None:
        kept: dict[str, Any] = {}
        spilled: dict[str, Any] = {}
        for name, value in state.items():
            size = _size(value)
            if size < SPILL_MIN_BYTES or self.in_memory + size <= self.memory_budget:
                kept[name] = value
                self.in_memory += size
            else:
                spilled[name] = value
                self.spilled_bytes += size
        index = len(self._inputs)
        arrays: dict[str, Path] = {}
        for name in [name for name, value in spilled.items() if _codec_kind(value)]:
            arrays[name] = self._folder_path() / f"input-{index}-{name}.tensors"
            _write_arrays(arrays[name], spilled.pop(name))
        objects = None
        if spilled:
            objects = self._folder_path() / f"input-{index}.pkl"
            with objects.open("xb") as handle:
                pickle.dump(spilled, handle, protocol=pickle.HIGHEST_PROTOCOL)
        self._inputs.append(FlowInput(kept, objects, tuple(spilled), arrays))

    @property
    def inputs(self) -> list[FlowInput]:
        return self._inputs

    def close(self) -> None:
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def _folder_path(self) -> Path:
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="fx-join-"))  # created with mode 0700
            os.chmod(self._folder, 0o700)
        return self._folder


@contextmanager
def join_inputs(memory_budget: int) -> Iterator[InputStore]:
    store = InputStore(memory_budget)
    try:
        yield store
    finally:
        store.close()


def _size(value: Any) -> int:
    """Bytes an attribute holds: arrays and tensors exactly, models by their state, others by pickling."""
    nbytes = getattr(value, "nbytes", None)
    if isinstance(nbytes, int):
        return nbytes
    state_dict = getattr(value, "state_dict", None)
    if callable(state_dict):
        try:
            return sum(_size(entry) for entry in state_dict().values()) + 1024
        except Exception:
            pass
    numel, element_size = getattr(value, "numel", None), getattr(value, "element_size", None)
    if callable(numel) and callable(element_size):
        return int(numel()) * int(element_size())
    if isinstance(value, Mapping) and len(value) < 100_000:
        return sum(_size(item) for item in value.values()) + 64 * len(value)
    if isinstance(value, str | bytes | int | float | bool | type(None)):
        return len(value) if isinstance(value, str | bytes) else 32
    try:
        return len(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    except Exception:
        return 0


def _codec_kind(value: Any) -> str | None:
    """ "array" or "mapping" when the tensor codec can hold `value`, else None."""
    try:
        if isinstance(value, np.ndarray):
            dtype_name(value.dtype)
            return "array"
        if isinstance(value, Mapping) and value and all(isinstance(k, str) for k in value):
            for item in value.values():
                if not isinstance(item, np.ndarray):
                    return None
                dtype_name(item.dtype)
            return "mapping"
    except ValueError:  # a dtype the codec does not carry (object, strings, ...)
        return None
    return None


def _write_arrays(path: Path, value: np.ndarray | Mapping[str, np.ndarray]) -> None:
    entries = {"": value} if isinstance(value, np.ndarray) else dict(value)
    header = {
        "kind": "array" if isinstance(value, np.ndarray) else "mapping",
        "tensors": [[name, dtype_name(a.dtype), list(a.shape)] for name, a in entries.items()],
    }
    encoded = json.dumps(header).encode()
    with path.open("xb") as handle:
        handle.write(len(encoded).to_bytes(8, "little"))
        handle.write(encoded)
        for array in entries.values():
            handle.write(array_bytes(array))


def _read_arrays(path: Path) -> np.ndarray | dict[str, np.ndarray]:
    with path.open("rb") as handle:
        header = json.loads(handle.read(int.from_bytes(handle.read(8), "little")))
        found: dict[str, np.ndarray] = {}
        for name, dtype, shape in header["tensors"]:
            size = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
            found[name] = array_from_buffer(bytearray(handle.read(size)), dtype, shape)
    return found[""] if header["kind"] == "array" else found
