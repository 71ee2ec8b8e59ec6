"""Zip archives written and read without surprises: no entry may land outside the target folder."""

from __future__ import annotations

import os
import stat
import zipfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from openfl_cli.errors import SecurityError

MAX_UNPACKED_BYTES = 8 << 30  # refuse zip bombs bigger than this


def _safe_member_path(target: Path, member: zipfile.ZipInfo, archive: Path) -> Path:
    name = member.filename
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or (pure.parts and ":" in pure.parts[0]):
        raise SecurityError(f"{archive}: entry {name!r} would land outside {target}; refusing the archive")
    if stat.S_ISLNK(member.external_attr >> 16):
        raise SecurityError(f"{archive}: entry {name!r} is a symbolic link; refusing the archive")
    destination = (target / Path(*pure.parts)).resolve() if pure.parts else target.resolve()
    root = target.resolve()
    if destination != root and root not in destination.parents:
        raise SecurityError(f"{archive}: entry {name!r} would land outside {target}; refusing the archive")
    return destination


def check_archive(archive: str | Path, target: str | Path) -> list[zipfile.ZipInfo]:
    """Check every entry of `archive` against `target` before anything is written."""
    archive, target = Path(archive), Path(target)
    try:
        with zipfile.ZipFile(archive) as handle:
            members = handle.infolist()
    except (zipfile.BadZipFile, OSError) as error:
        raise SecurityError(f"{archive}: not a readable zip archive ({error})") from None
    total = 0
    for member in members:
        _safe_member_path(target, member, archive)
        total += member.file_size
    if total > MAX_UNPACKED_BYTES:
        raise SecurityError(f"{archive}: unpacks to {total} bytes, over the limit of {MAX_UNPACKED_BYTES}")
    return members


def safe_extract(archive: str | Path, target: str | Path) -> list[Path]:
    """Unpack `archive` into `target` after checking every entry; return the files written."""
    archive, target = Path(archive), Path(target)
    members = check_archive(archive, target)
    target.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with zipfile.ZipFile(archive) as handle:
        for member in members:
            destination = _safe_member_path(target, member, archive)
            if member.is_dir():
                destination.mkdir(parents=True, exist_ok=True)
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            with handle.open(member) as source, open(destination, "wb") as sink:
                while chunk := source.read(1 << 20):
                    sink.write(chunk)
            mode = (member.external_attr >> 16) & 0o777
            if mode:
                os.chmod(destination, mode & 0o755)  # never carry set-uid bits or world-writable modes
            written.append(destination)
    return written


def read_member(archive: str | Path, name: str, max_bytes: int = 16 << 20) -> bytes:
    """Read one small entry of an archive by exact name (for certificate packages)."""
    archive = Path(archive)
    try:
        with zipfile.ZipFile(archive) as handle:
            info = handle.getinfo(name)
            if info.file_size > max_bytes:
                raise SecurityError(f"{archive}: entry {name!r} is larger than {max_bytes} bytes")
            return handle.read(info)
    except KeyError:
        raise SecurityError(f"{archive}: has no entry {name!r}") from None
    except (zipfile.BadZipFile, OSError) as error:
        raise SecurityError(f"{archive}: not a readable zip archive ({error})") from None


def write_archive(archive: str | Path, entries: Iterable[tuple[str, Path | bytes]]) -> Path:
    """Write a zip atomically from (name in archive, file path or bytes) pairs."""
    from openfl_cli.utils.fs import atomic_writer

    archive = Path(archive)
    with atomic_writer(archive) as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as handle:
        for name, content in entries:
            if isinstance(content, bytes):
                handle.writestr(name, content)
            else:
                handle.write(content, name)
    return archive
