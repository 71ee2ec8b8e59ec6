"""`fx workspace export`: the shareable part of a workspace as one zip.

The archive holds the plan, the code and the requirements (the packages of the environment it is
exported from, pinned: see requirements.py): what every participant must agree to run.
It never holds secrets or node-specific state: keys, certificates, signing requests, snapshots,
databases, other archives, hidden files, or this node's data paths (`plan/data.yaml` ships empty).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from openfl_cli.workspace.layout import EMPTY_DATA, WORKSPACE_DIRS, require_workspace

if TYPE_CHECKING:
    from openfl_cli.workspace.requirements import Requirements

log = logging.getLogger(__name__)

SHARED_DIRS = ("plan", "src")
# kept out whatever folder they are in
SECRET_SUFFIXES = frozenset({".key", ".pem", ".crt", ".cer", ".der", ".csr", ".srl", ".p12", ".pfx", ".jks"})
STATE_SUFFIXES = frozenset({".pbuf", ".zip", ".db", ".sqlite", ".sqlite3", ".pyc", ".tmp"})
_SNIFF_LIMIT = 1 << 20
_PEM_SECRET = b"PRIVATE KEY-----"


def export_workspace(
    workspace: str | Path = ".",
    output: str | Path | None = None,
    requirements: Requirements | None = None,
) -> Path:
    """Write the workspace's archive (default `<workspace>/<workspace name>.zip`); return its path.

    Its `requirements.txt` is `requirements`, by default those of this environment (see
    `shipped_requirements`).
    """
    from openfl_cli.utils.archive import write_archive

    root = require_workspace(workspace)
    archive = Path(output).expanduser().absolute() if output else root / f"{root.name}.zip"
    if requirements is None:
        requirements = shipped_requirements(root)
    # listed before the archive exists: it can never contain itself
    entries = export_entries(root, requirements.text().encode())
    return write_archive(archive, entries)


def shipped_requirements(root: Path) -> Requirements:
    """This environment's packages, pinned, plus what the workspace's own requirements.txt adds."""
    from openfl_cli.workspace.requirements import environment_requirements, with_declared

    return with_declared(environment_requirements(), root / "requirements.txt")


def export_entries(root: Path, requirements: bytes | None = None) -> list[tuple[str, Path | bytes]]:
    """The (archive name, content) pairs of the export, in a stable order; `requirements` is the
    content of `requirements.txt` (by default the workspace's own file)."""
    entries: list[tuple[str, Path | bytes]] = [(f"{name}/", b"") for name in WORKSPACE_DIRS]
    for folder in SHARED_DIRS:
        for path in _shared_files(root / folder):
            name = path.relative_to(root).as_posix()
            entries.append((name, EMPTY_DATA.encode() if name == "plan/data.yaml" else path))
    if not any(name == "plan/data.yaml" for name, _ in entries):
        entries.append(("plan/data.yaml", EMPTY_DATA.encode()))
    if requirements is None:
        own = root / "requirements.txt"
        requirements = own.read_bytes() if _is_regular(own) else b""
    entries.append(("requirements.txt", requirements))
    return entries


def is_shareable(path: Path) -> bool:
    """False for anything that must never leave this node (by name, and for PEM private keys by content)."""
    if path.name.startswith(".") or path.suffix.lower() in SECRET_SUFFIXES | STATE_SUFFIXES:
        return False
    if path.stat().st_size <= _SNIFF_LIMIT and _PEM_SECRET in path.read_bytes():
        log.warning("not exporting %s: it holds a private key", path)
        return False
    return True


def _shared_files(folder: Path) -> Iterator[Path]:
    if not folder.is_dir() or folder.is_symlink():
        return
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.name == "__pycache__":
            continue
        if path.is_symlink():
            log.warning("not exporting %s: symbolic links are not followed", path)
        elif path.is_dir():
            yield from _shared_files(path)
        elif path.is_file() and is_shareable(path):
            yield path


def _is_regular(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()
