"""Data sets shared by the data loaders of one process while a simulation runs.

A real collaborator builds one data loader; the simulator builds one per simulated collaborator in a
single process, and each would read (or try to download) the same data set again. Inside
`sharing_datasets()` a loader's `shared_dataset(key, load)` calls `load` once per key and hands every
later caller the same arrays, made read-only so no loader can change another's data. Outside it,
`load` runs every time, as before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_scopes = 0
_loaded: dict[tuple[str, ...], Any] = {}
_key_locks: dict[tuple[str, ...], threading.Lock] = {}


@contextmanager
def sharing_datasets() -> Iterator[None]:
    global _scopes
    with _lock:
        _scopes += 1
    try:
        yield
    finally:
        with _lock:
            _scopes -= 1
            if _scopes == 0:
                _loaded.clear()
                _key_locks.clear()


def shared_dataset(key: tuple[str, ...], load: Callable[[], T]) -> T:
    with _lock:
        if _scopes == 0:
            sharing = False
        else:
            sharing = True
            if key in _loaded:
                return _loaded[key]
            key_lock = _key_locks.setdefault(key, threading.Lock())
    if not sharing:
        return load()
    with key_lock:  # one thread loads, the others wait for its result
        with _lock:
            if key in _loaded:
                return _loaded[key]
        value = _read_only(load())
        with _lock:
            if _scopes:
                _loaded[key] = value
        return value


def _read_only(value: T) -> T:
    items = value if isinstance(value, tuple | list) else (value,)
    for item in items:
        setflags = getattr(item, "setflags", None)
        if setflags is not None:
            setflags(write=False)
    return value
