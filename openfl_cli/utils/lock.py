"""A lock that one process holds while it owns something (a workspace's state), never stuck after a crash.

An exclusive `fcntl.flock` on a lock file: the operating system releases it when its holder's process
dies, however it dies, so a crash never leaves it held. The file tells who holds it (pid and start
time), for the error a second process shows. The file is never deleted: a lock on a deleted file would
not be seen by the next process that creates the file again.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from openfl_cli.errors import FxError

_READ_RETRIES = 20  # a holder writes its details just after taking the lock: wait briefly for them


@dataclass(frozen=True)
class LockOwner:
    """Who holds a lock, as its lock file says (None where it does not say)."""

    pid: int | None
    started: datetime | None

    def describe(self) -> str:
        """`pid N, started HH:MM:SS` (local time)."""
        pid = str(self.pid) if self.pid is not None else "unknown"
        started = "at an unknown time"
        if self.started is not None:
            started = self.started.astimezone().strftime("%H:%M:%S")
        return f"pid {pid}, started {started}"


class LockHeld(FxError):
    """Another live process holds the lock."""

    def __init__(self, path: Path, owner: LockOwner) -> None:
        self.path = path
        self.owner = owner
        super().__init__(f"{path}: held by another process ({owner.describe()})")


class ProcessLock:
    """An exclusive lock on `path`, held by this process from `acquire()` to `release()` (or its death)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock without waiting; raise `LockHeld`, naming the holder, when another process has it."""
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # not O_TRUNC: the holder's details must survive until we know that we hold the lock
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockHeld(self.path, read_owner(self.path)) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            started = datetime.now().astimezone().isoformat(timespec="seconds")
            content = json.dumps({"pid": os.getpid(), "started": started}) + "\n"
            os.ftruncate(fd, 0)
            os.pwrite(fd, content.encode("utf-8"), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # releases the lock; the file stays (see the module's notes)

    def __enter__(self) -> ProcessLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@contextlib.contextmanager
def holding(path: str | Path) -> Iterator[ProcessLock]:
    """`with holding(path):` the lock for the body; `LockHeld` when another process has it."""
    with ProcessLock(path) as lock:
        yield lock


def read_owner(path: str | Path) -> LockOwner:
    """The holder's details from the lock file (retried briefly: a new holder writes them just after
    it takes the lock)."""
    for attempt in range(_READ_RETRIES):
        owner = _parse(Path(path))
        if owner is not None:
            return owner
        if attempt + 1 < _READ_RETRIES:
            time.sleep(0.01)
    return LockOwner(None, None)


def _parse(path: Path) -> LockOwner | None:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict):
        return None
    pid = document.get("pid")
    started: datetime | None = None
    with contextlib.suppress(TypeError, ValueError):
        started = datetime.fromisoformat(str(document.get("started")))
    return LockOwner(pid if isinstance(pid, int) else None, started)
