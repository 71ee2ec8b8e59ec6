"""`fx workspace import`: unpack an exported workspace into a new folder, safely."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from openfl_cli.errors import UsageError
from openfl_cli.workspace.layout import complete_layout, require_empty_target


def import_workspace(
    archive: str | Path,
    parent: str | Path = ".",
    install_requirements: bool = False,
    echo: Callable[[str], None] | None = None,
) -> Path:
    """Unpack `archive` (`X.zip`) into `parent/X/` and return that folder; with `install_requirements`,
    pip-install its `requirements.txt` into this environment. `echo` is told each step.

    Every entry is checked before anything is written (no absolute paths, no `..`, no links); the
    archive is unpacked into a hidden folder and renamed into place once it is known to be a workspace.
    """
    from openfl_cli.utils.archive import safe_extract

    say = echo or _quiet
    source = Path(archive).expanduser().absolute()
    if not source.is_file():
        raise UsageError(f"archive {archive} not found")
    name = source.name[: -len(".zip")] if source.name.lower().endswith(".zip") else source.stem
    if not name or name.startswith("."):
        raise UsageError(f"archive {archive}: cannot name a workspace folder after it")
    target = Path(parent).expanduser().absolute() / name
    require_empty_target(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    say(f"Unpacking {source} into {target}")
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".importing", dir=target.parent))
    try:
        safe_extract(source, staging)
        if not (staging / "plan" / "plan.yaml").is_file():
            raise UsageError(f"archive {archive} is not a workspace (it has no plan/plan.yaml)")
        complete_layout(staging)
        staging.chmod(0o755)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    say(f"Unpacked the workspace into {target}")
    if install_requirements:
        install_workspace_requirements(target, say)
    return target


def install_workspace_requirements(workspace: Path, echo: Callable[[str], None] | None = None) -> bool:
    """`pip install -r requirements.txt` into this interpreter's environment; False when it names nothing."""
    from openfl_cli.workspace.requirements import install_requirements

    return install_requirements(workspace / "requirements.txt", echo or _quiet)


def _quiet(_: str) -> None:
    pass
