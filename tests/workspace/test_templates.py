from __future__ import annotations

from pathlib import Path

import pytest

from openfl_cli.errors import UsageError
from openfl_cli.workspace.templates import list_templates, template_path


def _template(root: Path, name: str) -> Path:
    folder = root / name
    (folder / "plan").mkdir(parents=True)
    (folder / "plan" / "plan.yaml").write_text("{}\n")
    return folder


def test_bundled_templates_include_digits() -> None:
    assert "numpy/digits" in list_templates()
    assert template_path("numpy/digits").name == "digits"


def test_listing_finds_nested_templates_and_skips_hidden(tmp_path: Path) -> None:
    _template(tmp_path, "torch/mnist")
    _template(tmp_path, "numpy/digits")
    _template(tmp_path, "flat")
    _template(tmp_path, ".hidden/x")
    _template(tmp_path, "__pycache__/y")
    (tmp_path / "empty" / "folder").mkdir(parents=True)
    assert list_templates(tmp_path) == ["flat", "numpy/digits", "torch/mnist"]


@pytest.mark.parametrize(
    "name", ["../numpy/digits", "/etc", "numpy/../numpy/digits", "", ".hidden/x", "numpy\\digits", "a//b"]
)
def test_names_cannot_escape(tmp_path: Path, name: str) -> None:
    _template(tmp_path, "numpy/digits")
    _template(tmp_path, ".hidden/x")
    with pytest.raises(UsageError, match="available templates: numpy/digits"):
        template_path(name, tmp_path)


def test_unknown_name_lists_templates(tmp_path: Path) -> None:
    _template(tmp_path, "numpy/digits")
    _template(tmp_path, "torch/mnist")
    with pytest.raises(UsageError, match=r"unknown template 'keras/mnist'.*numpy/digits, torch/mnist"):
        template_path("keras/mnist", tmp_path)
    with pytest.raises(UsageError, match="unknown template 'numpy'"):
        template_path("numpy", tmp_path)  # a category, not a template


def test_symlink_out_of_the_root_is_refused(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    _template(outside, "evil")
    (root / "evil").symlink_to(outside / "evil")
    with pytest.raises(UsageError, match="unknown template 'evil'"):
        template_path("evil", root)
