"""Imports point down the layers (DESIGN.md): the framework-free core imports no layer above it, not
even for typing or inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "openfl_cli"
ABOVE_CORE = {
    "plan",
    "pki",
    "workspace",
    "runners",
    "cli",
    "node",
    "workflow",
    "job",
    "client",
    "director",
    "envoy",
    "quickstart",
}
# each layer of the core and what it may not import: the transport sits below the federation, the
# tensor codec below both
FORBIDDEN = {
    "federation": ABOVE_CORE,
    "transport": ABOVE_CORE | {"federation"},
    "tensors": ABOVE_CORE | {"federation", "transport"},
}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import in `path`, TYPE_CHECKING blocks and functions included."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
    return found


def upward_imports(package: Path, rules: dict[str, set[str]] = FORBIDDEN) -> list[str]:
    hits = []
    for layer, forbidden in rules.items():
        files = sorted((package / layer).rglob("*.py"))
        for path in files:
            if "_pb2" in path.name:
                continue
            for line, module in imported_modules(path):
                parts = module.split(".")
                if parts[0] == "openfl_cli" and len(parts) > 1 and parts[1] in forbidden:
                    hits.append(f"{path.relative_to(package.parent)}:{line} imports {module}")
    return hits


def test_the_core_imports_no_layer_above_it() -> None:
    assert all(len(list((PACKAGE / layer).rglob("*.py"))) >= 4 for layer in FORBIDDEN)  # the layers are there
    assert upward_imports(PACKAGE) == []


def test_the_check_finds_an_upward_import(tmp_path: Path) -> None:
    bad = tmp_path / "openfl_cli" / "federation"
    bad.mkdir(parents=True)
    (bad / "sneaky.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from openfl_cli.plan import Plan\n"
        "def f():\n    import openfl_cli.runners.base\n"
    )
    (bad / "fine.py").write_text("from openfl_cli.tensors.codec import as_array\nfrom . import sneaky\n")
    hits = upward_imports(tmp_path / "openfl_cli", {"federation": ABOVE_CORE})
    assert [hit.split(" imports ")[1] for hit in hits] == ["openfl_cli.plan", "openfl_cli.runners.base"]
