"""plan/cols.yaml and plan/data.yaml (both YAML mappings and OpenFL's `name,path` lines)."""

from __future__ import annotations

from pathlib import Path

import pytest

from openfl_cli.errors import PlanError
from openfl_cli.plan.participants import read_collaborators, read_data_paths


def write(tmp_path: Path, text: str, name: str = "file.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def cols(tmp_path: Path, text: str) -> list[str]:
    return read_collaborators(write(tmp_path, text), "plan/cols.yaml")


def data(tmp_path: Path, text: str) -> dict[str, str]:
    return read_data_paths(write(tmp_path, text), "plan/data.yaml")


def test_cols(tmp_path):
    assert cols(tmp_path, "collaborators:\n- one\n- two.site-3_a\n") == ["one", "two.site-3_a"]
    assert cols(tmp_path, "collaborators:\n") == []
    assert cols(tmp_path, "") == []
    assert read_collaborators(tmp_path / "missing.yaml", "x") == []


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        ("collaborators:\n- ../evil\n", "collaborators[0]", "invalid collaborator name '../evil'"),
        ("collaborators:\n- one\n- '..'\n", "collaborators[1]", "invalid collaborator name"),
        ("collaborators:\n- one\n- 7\n", "collaborators[1]", "invalid collaborator name 7"),
        ("collaborators:\n- one\n- one\n", "collaborators[1]", "duplicate collaborator name 'one'"),
        ("collaborators: one\n", "collaborators", "expected a list of names"),
        ("colaborators: [one]\n", "colaborators", "did you mean 'collaborators'?"),
    ],
)
def test_bad_cols(tmp_path, text, key, fragment):
    with pytest.raises(PlanError) as caught:
        cols(tmp_path, text)
    assert caught.value.file == "plan/cols.yaml"
    assert caught.value.key == key
    assert fragment in caught.value.detail


def test_cols_yaml_syntax_error(tmp_path):
    with pytest.raises(PlanError, match=r"plan/cols.yaml: invalid YAML at line 3"):
        cols(tmp_path, "collaborators:\n- [one\n")


def test_data_mapping(tmp_path):
    assert data(tmp_path, "one: 1\ntwo: /data/two\n# comment\n") == {"one": "1", "two": "/data/two"}
    assert data(tmp_path, "") == {}
    assert read_data_paths(tmp_path / "missing.yaml", "x") == {}


def test_data_openfl_lines(tmp_path):
    text = "# OpenFL style\none,1\ntwo , data/two\n\nthree,/abs/path with spaces\n"
    assert data(tmp_path, text) == {"one": "1", "two": "data/two", "three": "/abs/path with spaces"}
    assert data(tmp_path, "one,1") == {"one": "1"}


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        ("../x: 1\n", "../x", "invalid collaborator name"),
        ("one: [1, 2]\n", "one", "expected a data path"),
        ("one: ''\n", "one", "expected a data path"),
        ("one,1\n../two,2\n", "line 2", "invalid collaborator name"),
        ("one,1\none,2\n", "line 2", "duplicate collaborator name 'one'"),
        ("one,1\ntwo,\n", "line 2", "expected 'name,data path'"),
    ],
)
def test_bad_data(tmp_path, text, key, fragment):
    with pytest.raises(PlanError) as caught:
        data(tmp_path, text)
    assert caught.value.file == "plan/data.yaml"
    assert caught.value.key == key
    assert fragment in caught.value.detail


def test_data_list_is_an_error(tmp_path):
    with pytest.raises(PlanError, match="expected a mapping"):
        data(tmp_path, "- one\n- two\n")
