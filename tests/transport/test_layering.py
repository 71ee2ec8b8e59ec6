"""The transport is part of the core: it imports nothing from the layers above it, not even for typing."""

from __future__ import annotations

import ast
from pathlib import Path

import openfl_cli.transport

ABOVE = ("plan", "pki", "workspace", "runners", "cli", "node", "federation")
PACKAGE = Path(openfl_cli.transport.__file__).parent


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports anywhere (top level, functions, TYPE_CHECKING blocks)."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
    return modules


def test_the_transport_imports_no_layer_above_it() -> None:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 10 and PACKAGE / "core" / "guard.py" in files
    found = {
        f"{path.relative_to(PACKAGE)}: {module}"
        for path in files
        for module in imported_modules(path)
        if module.split(".")[:2] in [["openfl_cli", layer] for layer in ABOVE]
    }
    assert not found, sorted(found)


def test_the_check_sees_imports_inside_functions_and_type_checking(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from openfl_cli.pki.layout import TlsPaths\n"
        "def f():\n    import openfl_cli.plan\n"
    )
    assert {"openfl_cli.pki.layout", "openfl_cli.plan"} <= imported_modules(sample)
