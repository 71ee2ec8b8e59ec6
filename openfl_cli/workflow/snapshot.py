"""A task's snapshot for a checkpoint: its public attributes when its step ended, and its output.

The flow goes on changing its objects, so a snapshot holds a copy: a deep copy (for arrays and
tensors a plain memory copy, several times cheaper than a pickle), which the checkpoint's writer
thread then keys and pickles beside the flow. Each attribute is keyed by a digest of its content
(`content_key`), so an attribute equal to one already saved (a model that validation did not change)
is neither pickled nor written again. Private attributes never enter a snapshot: the caller leaves a
participant's private attributes out, and names that start with `_` are dropped here.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import importlib
import io
import pickle
import sys
import time
import types
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from openfl_cli.runners.torch_pickle import storage_digest
from openfl_cli.workflow.capture import StepOutput


@dataclass
class TaskSnapshot:
    step: str
    participant: str
    values: dict[str, Any]  # copies still to be keyed and pickled
    keys: dict[str, str] = field(default_factory=dict)  # attribute -> content key
    blobs: dict[str, bytes] = field(default_factory=dict)  # content key -> pickle, where it may be new
    types: dict[str, str] = field(default_factory=dict)  # attribute -> its type, as Metaflow shows it
    unsaved: dict[str, str] = field(default_factory=dict)  # attribute -> why it could not be saved
    stdout: str = ""
    stderr: str = ""
    started: float = 0.0  # epoch seconds
    finished: float = 0.0
    failure: str | None = None  # the step raised: what (its traceback is in stderr)

    def encode(self, stored: MutableMapping[str, int], write: BlobWriter | None = None) -> None:
        """Key every value, and pickle those whose key is not in `stored` (key -> size), adding them:
        into `blobs`, or straight into a file through `write` (no copy of the pickle in memory)."""
        seen: dict[tuple[int, int], str] = {}  # storage digests by address, while the copies live
        for name, value in self.values.items():
            try:
                key = content_key(value, seen)
                if key not in stored:
                    if write is None:
                        self.blobs[key] = dumps(value)
                        stored[key] = len(self.blobs[key])
                    else:
                        stored[key] = write(key, functools.partial(dump, value))
            except OSError:
                raise  # the disk's failure, not the value's: the checkpoint stops
            except Exception as error:
                self.unsaved[name] = f"{type(error).__name__}: {error}"
                self.types.pop(name, None)
                continue
            self.keys[name] = key
        self.values = {}


SnapshotSink = Callable[[TaskSnapshot], None]
# writes a blob under a key through the callable that pickles into the open file; returns its size
BlobWriter = Callable[[str, Callable[[BinaryIO], None]], int]


def take_snapshot(
    state: Mapping[str, Any], output: StepOutput, failure: BaseException | None = None
) -> TaskSnapshot:
    """`state`: the attributes that may be saved (the caller leaves out the private ones);
    `failure`: what the step raised, for a failed task."""
    public = {name: value for name, value in state.items() if not name.startswith("_")}
    started = output.started or time.time() - output.seconds
    snapshot = TaskSnapshot(
        output.step,
        output.participant,
        {},
        types={name: str(type(value)) for name, value in public.items()},
        stdout=output.stdout,
        stderr=output.stderr,
        started=started,
        finished=started + output.seconds,
        failure=None if failure is None else f"{type(failure).__name__}: {failure}",
    )
    try:
        snapshot.values = copy.deepcopy(public)  # one copy of the whole: shared objects stay shared
    except Exception:
        for name, value in public.items():
            try:
                snapshot.values[name] = copy.deepcopy(value)
            except Exception:
                try:
                    blob = dumps(value)
                except Exception as error:
                    snapshot.unsaved[name] = f"{type(error).__name__}: {error}"
                    snapshot.types.pop(name, None)
                    continue
                key = blob_key(blob)
                snapshot.keys[name], snapshot.blobs[key] = key, blob
    return snapshot


def dump(value: Any, file: BinaryIO) -> None:
    """A pickle the reader loads with plain `pickle.loads`. Protocol 5 in band: one copy of large
    buffers instead of protocol 4's two."""
    _ByName(file, protocol=5).dump(value)


def dumps(value: Any) -> bytes:
    buffer = io.BytesIO()
    dump(value, buffer)
    return buffer.getvalue()


def blob_key(blob: bytes) -> str:
    """The key of a value known only as its pickle: the pickle's SHA-1, as Metaflow keys blobs."""
    return hashlib.sha1(blob, usedforsecurity=False).hexdigest()


def content_key(value: Any, seen: dict[tuple[int, int], str] | None = None) -> str:
    """SHA-1 of the value's pickle in which large buffers stand as their own digests: NumPy arrays
    hashed where they lie (protocol 5 out of band), PyTorch storages by `storage_digest` (`seen`
    keeps those of storages alive meanwhile). Equal values get equal keys without being pickled."""
    digest = hashlib.sha1(usedforsecurity=False)

    def out_of_band(buffer: pickle.PickleBuffer) -> bool:
        digest.update(buffer.raw())
        return False

    stream = io.BytesIO()
    _Digesting(stream, seen, protocol=5, buffer_callback=out_of_band).dump(value)
    digest.update(stream.getvalue())
    return digest.hexdigest()


class _ByName(pickle.Pickler):
    """Pickles a class or function by its module and name even where that name leads to another
    object in this process: a Ray worker holds by-value copies of the driver's classes, which plain
    pickle refuses ("not the same object"). The reader looks the name up in its own modules."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, types.ModuleType):
            return importlib.import_module, (obj.__name__,)
        if not isinstance(obj, type | types.FunctionType) or _resolves(obj):
            return NotImplemented
        module = sys.modules.get(obj.__module__)
        parent, _, name = obj.__qualname__.rpartition(".")
        if module is None or "<locals>" in obj.__qualname__:
            return NotImplemented  # plain pickle says why it cannot
        holder: Any = module
        for part in parent.split(".") if parent else ():
            holder = getattr(holder, part, None)
            if holder is None:
                return NotImplemented
        return getattr, (holder, name)


class _Digesting(_ByName):
    """The stream `content_key` hashes; never loaded."""

    def __init__(self, file: BinaryIO, seen: dict[tuple[int, int], str] | None, **options: Any) -> None:
        super().__init__(file, **options)
        self._seen = seen

    def reducer_override(self, obj: Any) -> Any:
        digest = storage_digest(obj, self._seen)
        if digest is not None:
            return str, (digest,)
        return super().reducer_override(obj)


def _resolves(obj: Any) -> bool:
    found: Any = sys.modules.get(obj.__module__)
    for part in obj.__qualname__.split("."):
        found = getattr(found, part, None)
    return found is obj
