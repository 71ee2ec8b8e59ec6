"""The folders and files every workspace has."""

from __future__ import annotations

from pathlib import Path

from openfl_cli.errors import UsageError

WORKSPACE_DIRS = ("plan", "src", "save", "logs", "data", "cert", "local_state")
EMPTY_COLS = "collaborators: []\n"
EMPTY_DATA = "{}\n"


def complete_layout(workspace: Path) -> None:
    """Create the standard folders and the plan's companion files where they are missing."""
    for name in WORKSPACE_DIRS:
        (workspace / name).mkdir(exist_ok=True)
    defaults = {"plan/cols.yaml": EMPTY_COLS, "plan/data.yaml": EMPTY_DATA, "requirements.txt": ""}
    for relative, text in defaults.items():
        path = workspace / relative
        if not path.exists():
            path.write_text(text, encoding="utf-8")


def require_workspace(folder: str | Path) -> Path:
    """`folder` as an absolute path, if it is a workspace (it holds `plan/plan.yaml`)."""
    workspace = Path(folder).expanduser().absolute()
    if not (workspace / "plan" / "plan.yaml").is_file():
        raise UsageError(f"{workspace} is not a workspace (no plan/plan.yaml); run this inside a workspace")
    return workspace


def require_empty_target(target: Path) -> None:
    """Refuse to write a workspace over anything but a missing or empty folder."""
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise UsageError(f"{target} exists and is not a folder; choose another path")
    if target.is_dir() and any(target.iterdir()):
        raise UsageError(f"{target} exists and is not empty; refusing to overwrite it")
