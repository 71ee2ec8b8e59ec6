"""Where the bundled folders (plan defaults, workspace templates, proto sources) live.

In a wheel they are copied into `openfl_cli/_bundled/`; in a source checkout or an editable
install they sit at the top of the repository.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def bundled_dir(name: str) -> Path:
    """Return the bundled folder `name` (`plan_defaults`, `workspace_templates`, `proto`)."""
    for candidate in (_PACKAGE_DIR / "_bundled" / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"bundled folder {name!r} is missing from the installation of openfl_cli")
