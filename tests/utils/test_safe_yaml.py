"""`load_yaml_text`: YAML that attacks the parser is refused fast in one line; normal plans load as before."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from openfl_cli.errors import PlanError
from openfl_cli.plan.files import read_yaml
from openfl_cli.plan.participants import read_data_paths
from openfl_cli.utils.safe_yaml import (
    MAX_ALIASES,
    MAX_DEPTH,
    MAX_YAML_CHARS,
    YamlSyntaxError,
    load_yaml_text,
)
from tests.conftest import REPO_ROOT, fx_env


def billion_laughs(levels: int = 9, width: int = 9) -> str:
    lines = ["lol0: &lol0 " + "[" + ", ".join(["lol"] * width) + "]"]
    for level in range(1, levels + 1):
        refs = ", ".join([f"*lol{level - 1}"] * width)
        lines.append(f"lol{level}: &lol{level} [{refs}]")
    return "\n".join(lines) + "\n"


def refusal(text: str, display: str = "plan/plan.yaml") -> PlanError:
    with pytest.raises(PlanError) as caught:
        load_yaml_text(text, display)
    message = str(caught.value)
    assert "\n" not in message, message
    assert message.startswith(f"{display}: "), message
    assert caught.value.exit_code == 2
    return caught.value


def test_billion_laughs_is_refused_fast() -> None:
    start = time.perf_counter()
    error = refusal(billion_laughs())
    assert time.perf_counter() - start < 1.0
    assert "nodes once its aliases are expanded" in str(error)
    assert "invalid YAML at line " in str(error)


def test_too_many_aliases() -> None:
    text = "a: &a x\nb: [" + ", ".join(["*a"] * (MAX_ALIASES + 1)) + "]\n"
    assert f"more than {MAX_ALIASES} alias uses" in str(refusal(text))


def test_recursive_alias() -> None:
    assert "refers to a node that contains it" in str(refusal("a: &a [1, *a]\n"))


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000 + "]" * 100_000,
        "{a: " * 5000 + "1" + "}" * 5000,
        "".join(" " * depth + "- \n" for depth in range(500)),
        "".join(" " * depth + "k:\n" for depth in range(500)),
    ],
    ids=["flow-list", "flow-map", "block-list", "block-map"],
)
def test_deep_nesting_is_refused(text: str) -> None:
    start = time.perf_counter()
    error = refusal(text)
    assert time.perf_counter() - start < 2.0
    assert f"nested more than {MAX_DEPTH} deep" in str(error)


def test_nesting_at_the_bound_loads() -> None:
    text = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert load_yaml_text(text, "x") == yaml.safe_load(text)


def test_duplicate_top_level_key() -> None:
    error = refusal("aggregator: {a: 1}\nnetwork: {}\naggregator: {b: 2}\n")
    assert str(error) == (
        "plan/plan.yaml: invalid YAML at line 3, column 1: "
        "duplicate key 'aggregator' at line 3 (first at line 1)"
    )


def test_duplicate_nested_key() -> None:
    text = (
        "aggregator:\n  settings:\n    rounds_to_train: 3\n    db_store_rounds: 2\n    rounds_to_train: 5\n"
    )
    error = refusal(text)
    assert "duplicate key 'rounds_to_train' at line 5 (first at line 3)" in str(error)
    assert "line 5, column 5" in str(error)


def test_duplicate_key_in_a_flow_mapping_and_a_list_item() -> None:
    assert "duplicate key 'a' at line 1 (first at line 1)" in str(refusal("x: {a: 1, a: 2}\n"))
    assert "duplicate key 'b' at line 3 (first at line 2)" in str(refusal("- a: 1\n  b: 1\n  b: 2\n"))


def test_merge_keys_may_be_overridden() -> None:
    text = "base: &base {x: 1, y: 2}\nderived:\n  <<: *base\n  x: 3\n"
    assert (
        load_yaml_text(text, "x")
        == yaml.safe_load(text)
        == {
            "base": {"x": 1, "y": 2},
            "derived": {"x": 3, "y": 2},
        }
    )


@pytest.mark.parametrize("char", ["\x00", "\x01", "\x1b", "\x7f", "\ufffe"])
def test_control_characters_are_refused(char: str) -> None:
    error = refusal(f"a: 1\nb: x{char}y\n")
    assert f"invalid YAML at line 2, column 5: control character U+{ord(char):04X}" in str(error)


def test_oversize_is_refused(tmp_path: Path) -> None:
    error = refusal("a: " + "x" * MAX_YAML_CHARS)
    assert "too large" in str(error)
    big = tmp_path / "plan.yaml"
    big.write_bytes(b"#" * (4 * MAX_YAML_CHARS + 10))
    with pytest.raises(PlanError, match="too large"):
        read_yaml(big, "plan/plan.yaml")


def test_syntax_errors_are_one_line_with_position() -> None:
    error = refusal("a: [1, 2\nb: 3\n")
    assert isinstance(error, YamlSyntaxError)
    assert str(error).startswith("plan/plan.yaml: invalid YAML at line ")
    assert "expected a single document" in str(refusal("a: 1\n---\nb: 2\n"))
    assert "undefined alias" in str(refusal("a: *nope\n"))
    assert "could not determine a constructor" in str(refusal("a: !!python/object/apply:os.system [x]\n"))


def test_data_file_refusals_do_not_fall_back_to_lines(tmp_path: Path) -> None:
    data = tmp_path / "data.yaml"
    data.write_text("one: /a\ntwo: /b\none: /c\n")
    with pytest.raises(PlanError, match="duplicate key 'one' at line 3"):
        read_data_paths(data, "plan/data.yaml")
    data.write_text("one,/a\ntwo,/b\n")
    assert read_data_paths(data, "plan/data.yaml") == {"one": "/a", "two": "/b"}


def _shipped_yaml() -> list[Path]:
    files = sorted((REPO_ROOT / "plan_defaults").glob("*.yaml"))
    files += sorted((REPO_ROOT / "workspace_templates").glob("**/plan/plan.yaml"))
    return files


def test_there_are_shipped_plans() -> None:
    files = _shipped_yaml()
    assert any(path.parent.name == "plan_defaults" for path in files)
    assert any(path.name == "plan.yaml" for path in files)


@pytest.mark.parametrize("path", _shipped_yaml(), ids=lambda path: str(path.relative_to(REPO_ROOT)))
def test_shipped_plans_load_as_with_safe_load(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert load_yaml_text(text, str(path)) == yaml.safe_load(text)


def test_long_defaults_path_is_one_line(tmp_path: Path) -> None:
    from openfl_cli.plan.sources import load_sections

    plan = tmp_path / "plan" / "plan.yaml"
    plan.parent.mkdir()
    for ref in ("x" * 100_000, "y" * 300 + ".yaml", "plan/defaults/a\x85b.yaml"):
        plan.write_text(yaml.safe_dump({"aggregator": {"defaults": ref}}))
        with pytest.raises(PlanError) as caught:
            load_sections(plan, "plan/plan.yaml", tmp_path, Path("."))
        assert "\n" not in str(caught.value)
        assert caught.value.key == "aggregator.defaults"
        if len(ref) > 4096:
            assert "at most 4096 characters" in str(caught.value)
            assert "x" * 200 not in str(caught.value)


# runs `fx plan validate` in a fresh interpreter: its exit code, time and peak memory beyond the imports
_VALIDATE = """
import json, resource, sys, time
from openfl_cli.cli.main import main
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
    main(["plan", "validate", "-p", "plan/plan.yaml"])
    code = 0
except SystemExit as done:
    code = done.code
elapsed = time.perf_counter() - start
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(json.dumps({"code": code, "elapsed": elapsed, "grown_kib": grown}))
"""


def test_fx_plan_validate_refuses_billion_laughs(tmp_path: Path) -> None:
    (tmp_path / "plan").mkdir()
    (tmp_path / "plan" / "plan.yaml").write_text(billion_laughs())
    proc = subprocess.run(
        [sys.executable, "-c", _VALIDATE],
        cwd=tmp_path,
        env=fx_env({"PYTHONPATH": str(REPO_ROOT)}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["code"] == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("fx: error: plan/plan.yaml: invalid YAML at line "), lines[0]
    assert "aliases are expanded" in lines[0]
    assert result["elapsed"] < 2.0, result
    assert result["grown_kib"] < 100 * 1024, result  # well under 100 MiB, where it used to pass 1.5 GB
