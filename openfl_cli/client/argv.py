"""A per-thread `sys.argv`, so scripts run in threads of one process each parse their own arguments.

`sys.argv` is one list for the whole process. `install()` replaces it, once, by a list subclass that
holds the real arguments and answers every list operation from the calling thread's own list when one
is bound (`bound_argv`), from the real arguments otherwise: argparse's `sys.argv[1:]` and
`sys.argv[0]` in a script's thread see that script's arguments, every other thread sees the process's.
A script that assigns `sys.argv = [...]` replaces it for the whole process, as it would anyway.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

_local = threading.local()
_install_lock = threading.Lock()

# list methods answered from the thread's own list (all of them but the in-place operators)
_FORWARDED = (
    "__getitem__",
    "__setitem__",
    "__delitem__",
    "__len__",
    "__iter__",
    "__reversed__",
    "__contains__",
    "__eq__",
    "__ne__",
    "__lt__",
    "__le__",
    "__gt__",
    "__ge__",
    "__add__",
    "__mul__",
    "__rmul__",
    "__repr__",
    "__str__",
    "__format__",
    "__reduce_ex__",
    "append",
    "extend",
    "insert",
    "pop",
    "remove",
    "clear",
    "index",
    "count",
    "sort",
    "reverse",
    "copy",
)


def _own() -> list[str] | None:
    own: list[str] | None = getattr(_local, "argv", None)
    return own


def _forward(name: str) -> Callable[..., Any]:
    real = getattr(list, name)

    def method(self: ThreadArgv, *args: Any, **kwargs: Any) -> Any:
        own = _own()
        if own is None:
            return real(self, *args, **kwargs)
        return getattr(own, name)(*args, **kwargs)

    method.__name__ = name
    method.__qualname__ = f"ThreadArgv.{name}"
    return method


class ThreadArgv(list[str]):
    """`sys.argv` answering per thread; see the module's docstring."""

    def __iadd__(self, other: Any) -> ThreadArgv:  # type: ignore[misc,override]  # keeps this object
        self.extend(other)
        return self

    def __imul__(self, times: Any) -> ThreadArgv:  # type: ignore[misc]
        own = _own()
        if own is None:
            list.__imul__(self, times)
        else:
            own *= times
        return self


for _name in _FORWARDED:
    setattr(ThreadArgv, _name, _forward(_name))


def install() -> None:
    """Replace `sys.argv` by a `ThreadArgv` holding the same arguments (once; idempotent)."""
    with _install_lock:
        if not isinstance(sys.argv, ThreadArgv):
            sys.argv = ThreadArgv(sys.argv)


@contextmanager
def bound_argv(argv: Sequence[str]) -> Iterator[None]:
    """Let the calling thread see `argv` as `sys.argv` until the block ends."""
    install()
    previous = _own()
    _local.argv = list(argv)
    try:
        yield
    finally:
        _local.argv = previous
