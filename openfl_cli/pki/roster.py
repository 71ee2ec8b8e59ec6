"""Who takes part (`plan/cols.yaml`) and where each one's data is (`plan/data.yaml`)."""

from __future__ import annotations

from pathlib import Path

import yaml

from openfl_cli.errors import UsageError
from openfl_cli.pki.layout import cols_path, data_path
from openfl_cli.utils.fs import atomic_write_text, updating
from openfl_cli.utils.names import check_collaborator_name


def read_collaborators(path: Path) -> list[str]:
    from openfl_cli.plan.participants import read_collaborators as read

    return read(path, str(path))


def add_collaborator(workspace: Path, name: str) -> bool:
    """Append `name` to `plan/cols.yaml`; False when it was already there."""
    path = cols_path(workspace)
    with updating(path):
        names = read_collaborators(path)
        if check_collaborator_name(name) in names:
            return False
        _write_collaborators(path, [*names, name])
    return True


def remove_collaborator(workspace: Path, name: str) -> bool:
    """Take `name` out of `plan/cols.yaml`; False when it was not there."""
    path = cols_path(workspace)
    with updating(path):
        names = read_collaborators(path)
        if check_collaborator_name(name) not in names:
            return False
        _write_collaborators(path, [other for other in names if other != name])
    return True


def set_data_path(workspace: Path, name: str, data: str) -> Path:
    """Record `name: data` in `plan/data.yaml`, replacing an older entry. A file of OpenFL's
    `name,path` lines keeps that form (and its comments); otherwise it is written as a YAML mapping."""
    from openfl_cli.plan.participants import is_line_format, read_data_paths, with_data_line

    if not str(data).strip():
        raise UsageError("the data path is empty")
    name, value = check_collaborator_name(name), str(data).strip()
    path = data_path(workspace)
    with updating(path):
        paths = read_data_paths(path, str(path))  # also checks the file as it is
        text = path.read_text(encoding="utf-8") if path.is_file() else ""
        if is_line_format(text):
            atomic_write_text(path, with_data_line(text, name, value))
        else:
            paths[name] = value
            atomic_write_text(path, yaml.safe_dump(paths, sort_keys=False, default_flow_style=False))
    return path


def _write_collaborators(path: Path, names: list[str]) -> None:
    atomic_write_text(
        path, yaml.safe_dump({"collaborators": names}, sort_keys=False, default_flow_style=False)
    )
