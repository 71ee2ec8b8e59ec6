"""Bundled workspace templates: any folder under `workspace_templates/` that holds `plan/plan.yaml`.

Template names are relative POSIX paths (`numpy/digits`, `torch/mnist`). They are checked before they
touch the file system, so a name can never reach outside the templates folder.
"""

from __future__ import annotations

import re
from pathlib import Path

from openfl_cli.errors import UsageError

# segments start with a letter or digit: no `..`, no hidden folders, no absolute paths
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)*")


def templates_root() -> Path:
    from openfl_cli.utils.resources import bundled_dir

    return bundled_dir("workspace_templates").resolve()


def list_templates(root: Path | None = None) -> list[str]:
    """The names of the bundled templates, sorted."""
    root = (root or templates_root()).resolve()
    found: list[str] = []
    _walk(root, root, found)
    return sorted(found)


def _walk(root: Path, folder: Path, found: list[str]) -> None:
    if (folder / "plan" / "plan.yaml").is_file():
        found.append(folder.relative_to(root).as_posix())
        return  # a template's own folders are not templates
    for child in sorted(folder.iterdir()):
        if child.is_dir() and not child.is_symlink() and child.name[0] not in "._":
            _walk(root, child, found)


def template_path(name: str, root: Path | None = None) -> Path:
    """The folder of template `name`; a clear UsageError naming the templates otherwise."""
    root = (root or templates_root()).resolve()
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        raise UsageError(f"invalid template name {name!r}; available templates: {_names(root)}")
    folder = (root / name).resolve()
    if root not in folder.parents or not (folder / "plan" / "plan.yaml").is_file():
        raise UsageError(f"unknown template {name!r}; available templates: {_names(root)}")
    return folder


def _names(root: Path) -> str:
    return ", ".join(list_templates(root)) or "(none installed)"
