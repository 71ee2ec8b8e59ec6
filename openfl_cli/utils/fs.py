"""File writes that never leave a torn file behind, private files for keys, and a lock for the
read-modify-write of a shared file."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

PRIVATE_MODE = 0o600


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
            os.fchmod(fd, mode)
            yield fd
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp_name, target)
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


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
