"""`fx workspace create`: a new workspace from a bundled template."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from openfl_cli.workspace.layout import complete_layout, require_empty_target
from openfl_cli.workspace.templates import template_path

_NOT_COPIED = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")


def create_workspace(prefix: str | Path, template: str) -> Path:
    """Copy template `template` into the new folder `prefix` and return its absolute path.

    The workspace is assembled in a hidden folder beside `prefix` and renamed into place, so an
    interrupted create leaves no half-made workspace behind.
    """
    source = template_path(template)
    target = Path(prefix).expanduser().absolute()
    require_empty_target(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".creating", dir=target.parent))
    try:
        shutil.copytree(source, staging, ignore=_NOT_COPIED, dirs_exist_ok=True)
        complete_layout(staging)
        staging.chmod(0o755)  # mkdtemp makes it 0700
        os.replace(staging, target)  # also replaces an empty folder
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
