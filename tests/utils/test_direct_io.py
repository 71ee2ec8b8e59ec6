"""DirectWriter: the same file as plain writes, past the page cache where the file system allows it."""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
from pathlib import Path

import numpy as np
import pytest

from openfl_cli.tensors.snapshot import load_snapshot, save_snapshot
from openfl_cli.utils import direct_io
from openfl_cli.utils.direct_io import ALIGN, DirectWriter
from openfl_cli.utils.fs import atomic_direct_writer

SMALL_BUFFER = 2 * ALIGN  # every few KiB a flush: the block arithmetic is exercised on small data


def _pieces(seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    sizes = [0, 1, ALIGN - 1, ALIGN, ALIGN + 1, SMALL_BUFFER, 3 * SMALL_BUFFER + 17, 5, 70_001]
    return [rng.integers(0, 256, size, dtype=np.uint8).tobytes() for size in sizes]


def _write(path: Path, pieces: list[bytes], buffer_bytes: int = SMALL_BUFFER) -> DirectWriter:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        writer = DirectWriter(fd, buffer_bytes)
        for piece in pieces:
            assert writer.write(memoryview(piece)) == len(piece)
        writer.finish()
        return writer
    finally:
        os.close(fd)


def _direct_supported(folder: Path) -> bool:
    probe = folder / "probe"
    return _write(probe, [b"x" * (ALIGN + 1)]).direct


@pytest.mark.parametrize("seed", [0, 1])
def test_the_file_holds_exactly_what_was_written(tmp_path: Path, seed: int) -> None:
    pieces = _pieces(seed)
    _write(tmp_path / "out", pieces)
    assert (tmp_path / "out").read_bytes() == b"".join(pieces)


@pytest.mark.parametrize("size", [0, 1, ALIGN, SMALL_BUFFER, SMALL_BUFFER + 1])
def test_exact_lengths_at_block_and_buffer_edges(tmp_path: Path, size: int) -> None:
    data = bytes(range(256)) * (size // 256 + 1)
    _write(tmp_path / "out", [data[:size]])
    assert (tmp_path / "out").read_bytes() == data[:size]


def test_buffer_size_must_be_whole_blocks() -> None:
    with pytest.raises(ValueError, match="multiple"):
        DirectWriter(0, ALIGN + 1)


def test_no_o_direct_falls_back_to_plain_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(direct_io, "_set_direct", lambda fd, enabled: False)
    pieces = _pieces(2)
    writer = _write(tmp_path / "out", pieces)
    assert not writer.direct
    assert (tmp_path / "out").read_bytes() == b"".join(pieces)


def test_a_write_refused_with_einval_goes_on_buffered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Some file systems accept O_DIRECT at open and refuse the writes: nothing is lost."""
    if not _direct_supported(tmp_path):
        pytest.skip("no O_DIRECT on this file system")
    real_write = os.write
    refused = []

    def refuse_direct_writes(fd: int, data: memoryview) -> int:
        if os.O_DIRECT & direct_io.fcntl.fcntl(fd, direct_io.fcntl.F_GETFL):
            refused.append(len(data))
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_write(fd, data)

    monkeypatch.setattr(direct_io.os, "write", refuse_direct_writes)
    pieces = _pieces(3)
    writer = _write(tmp_path / "out", pieces)
    assert refused and not writer.direct
    assert (tmp_path / "out").read_bytes() == b"".join(pieces)


def test_other_write_errors_surface(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def disk_full(fd: int, data: memoryview) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(direct_io.os, "write", disk_full)
    with pytest.raises(OSError, match="No space"):
        _write(tmp_path / "out", [b"x" * (3 * SMALL_BUFFER)])


def test_a_disk_error_in_an_atomic_write_surfaces_as_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "model.pbuf"
    target.write_bytes(b"old")

    def disk_full(fd: int, data: memoryview) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(direct_io.os, "write", disk_full)
    with pytest.raises(OSError, match="No space"), atomic_direct_writer(target) as handle:
        handle.write(b"x" * (3 * direct_io.BUFFER_BYTES))
    assert target.read_bytes() == b"old"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model.pbuf"]


def test_a_failed_atomic_write_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "model.pbuf"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_direct_writer(target) as handle:
        handle.write(b"new" * 10_000)
        raise RuntimeError("killed halfway")
    assert target.read_bytes() == b"old"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model.pbuf"]  # no temporary left


def test_a_snapshot_bypasses_the_page_cache(tmp_path: Path) -> None:
    """The point of it all: a snapshot's bytes are not copied into the page cache (mincore)."""
    if not _direct_supported(tmp_path):
        pytest.skip("no O_DIRECT on this file system")
    tensors = {f"t{i}": np.full(1_000_000, float(i), np.float32) for i in range(4)}
    path = tmp_path / "last.pbuf"
    save_snapshot(path, tensors, round_number=7)
    assert _cached_fraction(path) < 0.1
    loaded = load_snapshot(path)
    assert loaded.round_number == 7
    assert all(np.array_equal(loaded.tensors[name], value) for name, value in tensors.items())


def _cached_fraction(path: Path) -> float:
    """Share of the file's pages in the page cache."""
    size = path.stat().st_size
    page = mmap.PAGESIZE
    pages = -(-size // page)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    int_ = ctypes.c_int
    libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, int_, int_, int_, ctypes.c_long)
    libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
    libc.mincore.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p)
    with open(path, "rb") as handle:
        address = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, handle.fileno(), 0)
        assert address not in (None, ctypes.c_void_p(-1).value)
        try:
            residency = ctypes.create_string_buffer(pages)
            assert libc.mincore(address, size, residency) == 0, os.strerror(ctypes.get_errno())
        finally:
            libc.munmap(address, size)
    return sum(byte & 1 for byte in residency.raw) / pages
