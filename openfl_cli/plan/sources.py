"""Reading plan.yaml and its `defaults` files into one merged mapping, remembering where each value came from.

`defaults: plan/defaults/x.yaml` is looked up in the workspace first, then (by file name) among the
package's bundled defaults. A defaults file may name its own defaults; merging is deep and the
file that names the defaults wins over them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openfl_cli.errors import PlanError
from openfl_cli.plan.aliases import rename_settings
from openfl_cli.plan.files import read_yaml, unknown_key_message

SECTIONS = (
    "aggregator",
    "collaborator",
    "assigner",
    "data_loader",
    "task_runner",
    "tasks",
    "compression_pipeline",
    "network",
    "straggler_handling_policy",
)
# a `defaults:` value longer than this (PATH_MAX on Linux) is refused before any filesystem call
MAX_DEFAULTS_PATH = 4096
# sections a plan may leave out: they come from the package's defaults file of the same name
IMPLIED_DEFAULTS = {
    "aggregator": "plan/defaults/aggregator.yaml",
    "collaborator": "plan/defaults/collaborator.yaml",
    "assigner": "plan/defaults/assigner.yaml",
    "compression_pipeline": "plan/defaults/compression_pipeline.yaml",
    "network": "plan/defaults/network.yaml",
    "straggler_handling_policy": "plan/defaults/straggler_handling_policy.yaml",
}

Key = tuple[str, ...]


@dataclass
class Origins:
    """Which file each dotted key came from (the file that set it last)."""

    default: str
    files: dict[Key, str] = field(default_factory=dict)

    def record(self, data: Any, file: str, prefix: Key) -> None:
        self.files[prefix] = file
        if isinstance(data, dict):
            for key, value in data.items():
                self.record(value, file, (*prefix, str(key)))

    def file_for(self, key: Key) -> str:
        for end in range(len(key), 0, -1):
            found = self.files.get(key[:end])
            if found is not None:
                return found
        return self.default

    def error(self, key: Key, message: str) -> PlanError:
        return PlanError(self.file_for(key), ".".join(key), message)


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """A new mapping: `overlay` wins; mappings present in both merge recursively; lists are replaced."""
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _bundled_defaults() -> Path | None:
    from openfl_cli.utils.resources import bundled_dir

    try:
        return bundled_dir("plan_defaults")
    except FileNotFoundError:
        return None


def _is_file(path: Path) -> bool:
    """`path.is_file()`, False where the name cannot be looked up at all (a component too long)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


class _Resolver:
    def __init__(self, workspace: Path, workspace_display: Path, origins: Origins) -> None:
        self.workspace = workspace
        self.workspace_display = workspace_display
        self.origins = origins

    def find(self, ref: str, key: Key) -> tuple[Path, str]:
        """The defaults file `ref` names: (path to open, name to show in errors)."""
        given = Path(ref)
        if given.is_absolute():
            if _is_file(given):
                return given, ref
        elif _is_file(self.workspace / given):
            return self.workspace / given, str(self.workspace_display / given)
        bundled = _bundled_defaults()
        if bundled is not None and _is_file(bundled / given.name):
            return bundled / given.name, str(bundled / given.name)
        places = "at that path" if given.is_absolute() else f"in the workspace ({self.workspace / given})"
        raise self.origins.error(
            key, f"defaults file {ref!r} not found {places} nor among the package defaults ({given.name})"
        )

    def section(self, name: str, data: Any, file: str, chain: tuple[Path, ...]) -> dict[str, Any]:
        key: Key = (name,)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise PlanError(file, name, f"expected a mapping, got {type(data).__name__} {data!r}")
        base: dict[str, Any] = {}
        ref = data.get("defaults")
        if ref is not None:
            if not isinstance(ref, str) or not ref.strip():
                raise PlanError(file, f"{name}.defaults", f"expected a file path, got {ref!r}")
            if len(ref) > MAX_DEFAULTS_PATH or "\x00" in ref:
                what = "a NUL character" if "\x00" in ref else f"{len(ref)} characters"
                raise PlanError(
                    file,
                    f"{name}.defaults",
                    f"expected a file path of at most {MAX_DEFAULTS_PATH} characters without NUL, got {what}",
                )
            self.origins.record(ref, file, (*key, "defaults"))
            path, display = self.find(ref.strip(), (*key, "defaults"))
            identity = path.resolve()
            if identity in chain:
                names = " -> ".join(str(p) for p in (*chain, identity))
                raise PlanError(file, f"{name}.defaults", f"defaults cycle: {names}")
            base = self.section(name, read_yaml(path, display), display, (*chain, identity))
        overlay = {str(k): v for k, v in data.items() if k != "defaults"}
        if isinstance(overlay.get("settings"), dict):
            try:
                overlay["settings"] = rename_settings(
                    name, {str(k): v for k, v in overlay["settings"].items()}
                )
            except ValueError as error:
                key_name, message = error.args
                raise PlanError(file, f"{name}.settings.{key_name}", message) from None
        self.origins.record(overlay, file, key)
        return deep_merge(base, overlay)


def load_sections(
    plan_file: Path, plan_display: str, workspace: Path, workspace_display: Path
) -> tuple[dict[str, dict[str, Any]], Origins]:
    """Read the plan and every defaults file it names; return the merged sections and their origins."""
    document = read_yaml(plan_file, plan_display)
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise PlanError(plan_display, None, f"expected a mapping of sections, got {type(document).__name__}")
    origins = Origins(plan_display)
    for name in document:
        if name not in SECTIONS:
            raise PlanError(plan_display, str(name), unknown_key_message(str(name), SECTIONS, "section"))
    resolver = _Resolver(workspace, workspace_display, origins)
    sections: dict[str, dict[str, Any]] = {}
    for name in SECTIONS:
        if name in document:
            sections[name] = resolver.section(name, document[name], plan_display, (plan_file.resolve(),))
        elif name in IMPLIED_DEFAULTS:
            implied = {"defaults": IMPLIED_DEFAULTS[name]}
            sections[name] = resolver.section(name, implied, plan_display, (plan_file.resolve(),))
    return sections, origins
