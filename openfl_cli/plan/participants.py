"""`plan/cols.yaml` (who may take part) and `plan/data.yaml` (where each collaborator's data is)."""

from __future__ import annotations

from pathlib import Path

from openfl_cli.errors import PlanError, UsageError
from openfl_cli.plan.files import parse_yaml, read_yaml, unknown_key_message
from openfl_cli.utils.names import check_collaborator_name
from openfl_cli.utils.safe_yaml import YamlSyntaxError, load_yaml_text


def read_collaborators(path: Path, display: str) -> list[str]:
    """`collaborators: [names]`; a missing file means nobody yet."""
    document = read_yaml(path, display, missing_ok=True)
    if document is None:
        return []
    if not isinstance(document, dict):
        raise PlanError(display, None, "expected a mapping like 'collaborators: [one, two]'")
    for key in document:
        if key != "collaborators":
            raise PlanError(display, str(key), unknown_key_message(str(key), ["collaborators"], "key"))
    names = document.get("collaborators") or []
    if not isinstance(names, list):
        raise PlanError(display, "collaborators", f"expected a list of names, got {names!r}")
    seen: set[str] = set()
    for index, name in enumerate(names):
        key = f"collaborators[{index}]"
        _check_name(name, display, key)
        if name in seen:
            raise PlanError(display, key, f"duplicate collaborator name {name!r}")
        seen.add(name)
    return list(names)


def read_data_paths(path: Path, display: str) -> dict[str, str]:
    """A YAML mapping `name: path`, or OpenFL's `name,path` lines; a missing file means no entries."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as error:
        raise PlanError(display, None, f"cannot read: {error}") from None
    try:
        document = load_yaml_text(text, display)
    except YamlSyntaxError:
        document = text  # not YAML: perhaps the line format (YAML that breaks a bound is refused)
    if isinstance(document, str) or is_line_format(text):
        return _read_lines(text, display)
    if document is None:
        return {}
    if not isinstance(document, dict):
        parse_yaml(text, display)  # re-raise a syntax error with its line, if that is the problem
        raise PlanError(display, None, "expected a mapping 'name: data path' or lines 'name,data path'")
    paths: dict[str, str] = {}
    for name, value in document.items():
        _check_name(name, display, str(name))
        if isinstance(value, bool) or not isinstance(value, (str, int, float)) or str(value).strip() == "":
            raise PlanError(display, str(name), f"expected a data path, got {value!r}")
        paths[name] = str(value)
    return paths


def is_line_format(text: str) -> bool:
    """True when `text` is OpenFL's data file form: `name,path` lines (comments and blanks aside)."""
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return bool(lines) and all("," in line and ":" not in line.split(",", 1)[0] for line in lines)


def with_data_line(text: str, name: str, path: str) -> str:
    """`text` (line form) with `name,path` replacing that collaborator's line, or appended; every other
    line (comments included) is kept as it was."""
    lines = text.splitlines(keepends=True)
    entry = f"{name},{path}\n"
    for index, raw in enumerate(lines):
        line = raw.strip()
        if line and not line.startswith("#") and line.partition(",")[0].strip() == name:
            lines[index] = entry
            return "".join(lines)
    while lines and not lines[-1].strip():  # append after the last entry, not after trailing blanks
        lines.pop()
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    return "".join([*lines, entry])


def _read_lines(text: str, display: str) -> dict[str, str]:
    paths: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, comma, value = (part.strip() for part in line.partition(","))
        where = f"line {number}"
        if not comma or not value:
            raise PlanError(display, where, f"expected 'name,data path', got {line!r}")
        _check_name(name, display, where)
        if name in paths:
            raise PlanError(display, where, f"duplicate collaborator name {name!r}")
        paths[name] = value
    return paths


def _check_name(name: object, display: str, key: str) -> None:
    try:
        check_collaborator_name(name)  # type: ignore[arg-type]
    except UsageError as error:
        raise PlanError(display, key, str(error)) from None
