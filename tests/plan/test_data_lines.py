"""OpenFL's `name,path` data files keep their form when `fx collaborator create` records a path."""

from __future__ import annotations

from pathlib import Path

from openfl_cli.pki.roster import set_data_path
from openfl_cli.plan.participants import read_data_paths

OPENFL_DATA = (
    "# Copyright (C) 2020-2021 Intel Corporation\n\n# collaborator_name,data_directory_path\none,1\n\n  \n"
)


def _workspace(tmp_path: Path, data: str | None) -> Path:
    (tmp_path / "plan").mkdir()
    if data is not None:
        (tmp_path / "plan" / "data.yaml").write_text(data)
    return tmp_path


def test_a_new_collaborator_is_appended_as_a_line(tmp_path):
    path = set_data_path(_workspace(tmp_path, OPENFL_DATA), "two", "data/two")
    text = path.read_text()
    assert text == (
        "# Copyright (C) 2020-2021 Intel Corporation\n\n# collaborator_name,data_directory_path\none,1\n"
        "two,data/two\n"
    )
    assert read_data_paths(path, str(path)) == {"one": "1", "two": "data/two"}


def test_an_existing_line_is_replaced_in_place(tmp_path):
    data = "# header\none,1\ntwo,2\n# trailer\n"
    path = set_data_path(_workspace(tmp_path, data), "one", "/data/one")
    assert path.read_text() == "# header\none,/data/one\ntwo,2\n# trailer\n"


def test_a_yaml_mapping_stays_a_mapping(tmp_path):
    path = set_data_path(_workspace(tmp_path, "one: '1'\n"), "two", "2")
    assert path.read_text() == "one: '1'\ntwo: '2'\n"


def test_a_missing_file_becomes_a_mapping(tmp_path):
    path = set_data_path(_workspace(tmp_path, None), "one", "1")
    assert read_data_paths(path, str(path)) == {"one": "1"}
    assert "," not in path.read_text()
