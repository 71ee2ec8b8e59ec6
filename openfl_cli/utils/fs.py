"""File writes that never leave a torn file behind, private files for keys, and a lock for the
read-modify-write of a shared file."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

PRIVATE_MODE = 0o600

log = logging.getLogger(__name__)

# the temporary files of `_replacing`: `.NAME.XXXXXXXX.tmp` (`tempfile.mkstemp`'s random part)
TEMPORARY_NAME = re.compile(r"^\.(?P<target>.+)\.(?P<random>[a-z0-9_]+)\.tmp$")


class ByteSink(Protocol):
    """Where a writer of bytes puts them (a binary file, or a `DirectWriter`)."""

    def write(self, data: bytes | memoryview, /) -> int: ...


@contextlib.contextmanager
def _replacing(path: str | Path, mode: int, durable: bool = True) -> Iterator[int]:
    """A new file's descriptor in the target's folder; after the body, fsync it and rename it over `path`.

    A process killed at any moment leaves either the old file or the new one, never a mix.
    `durable=False` skips the fsyncs: still never a torn file for a reader, but a power cut may lose
    the file (for data that is cheap to lose and written in thousands of small files).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        try:
            # held until the rename is done: `remove_stale_temporaries` leaves a locked one alone
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.fchmod(fd, mode)
            yield fd
            if durable:
                os.fsync(fd)
            os.replace(tmp_name, target)
        finally:
            os.close(fd)
        if durable:
            _fsync_dir(target.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


@contextlib.contextmanager
def atomic_writer(path: str | Path, mode: int = 0o644, durable: bool = True) -> Iterator[BinaryIO]:
    """Yield a binary file in the target's folder; on success fsync it (unless not `durable`) and
    rename it over `path`."""
    with _replacing(path, mode, durable) as fd, os.fdopen(fd, "wb", closefd=False) as handle:
        yield handle
        handle.flush()


@contextlib.contextmanager
def atomic_direct_writer(path: str | Path, mode: int = 0o644) -> Iterator[ByteSink]:
    """`atomic_writer` for large files written once: the bytes go to the disk past the page cache
    (O_DIRECT where the file system allows it, see `utils.direct_io`)."""
    from openfl_cli.utils.direct_io import DirectWriter

    with _replacing(path, mode) as fd:
        writer = DirectWriter(fd)
        try:
            yield writer
            writer.finish()
        finally:
            writer.close()


def atomic_write_bytes(path: str | Path, data: bytes | memoryview, mode: int = 0o644) -> None:
    with atomic_writer(path, mode) as handle:
        handle.write(data)


def atomic_write_text(path: str | Path, text: str, mode: int = 0o644) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), mode)


def atomic_write_with(path: str | Path, write: Callable[[BinaryIO], None], mode: int = 0o644) -> None:
    with atomic_writer(path, mode) as handle:
        write(handle)


@contextlib.contextmanager
def updating(path: str | Path) -> Iterator[None]:
    """Hold an exclusive lock while `path` is read, changed and rewritten, so that two `fx` commands
    updating it at once do not lose each other's change (the second waits for the first).

    The lock is taken on a sibling `.NAME.lock` file: `path` itself is replaced by a rename on every
    write, so a lock on it would not be seen by the next writer."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target.parent / f".{target.name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def write_private(path: str | Path, data: bytes) -> None:
    """Write a secret (a private key) readable by its owner only, from the first byte on."""
    atomic_write_bytes(path, data, PRIVATE_MODE)


def remove_stale_temporaries(folders: Iterable[str | Path]) -> list[tuple[Path, int]]:
    """Delete the temporary files that writers killed mid-write left in `folders` (not their subfolders);
    return each removed file with its size, and log it.

    Only regular files named as `_replacing` names them, and only those no live writer holds (a
    writer keeps an exclusive `flock` on its temporary file until it renames it)."""
    removed: list[tuple[Path, int]] = []
    seen: set[Path] = set()
    for folder in map(Path, folders):
        key = folder.absolute()
        if key in seen:
            continue
        seen.add(key)
        try:
            names = sorted(entry.name for entry in os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for name in names:
            if TEMPORARY_NAME.match(name):
                size = _remove_unless_held(folder / name)
                if size is not None:
                    removed.append((folder / name, size))
                    log.warning("removed a stale temporary file %s (%d bytes)", folder / name, size)
    return removed


def _remove_unless_held(path: Path) -> int | None:
    """Unlink `path` if it is a regular file that nobody holds a lock on; its size, or None if kept."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:  # gone, a symbolic link, unreadable
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # a live writer's
            return None
        except OSError:
            pass  # no flock on this file system: the caller's own lock must rule out writers
        try:
            os.unlink(path)
        except FileNotFoundError:
            return None
        return info.st_size
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
