"""Reading YAML files of a plan into plain data, with errors that name the file and line."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from openfl_cli.errors import PlanError


def read_yaml(path: Path, display: str, *, missing_ok: bool = False) -> Any:
    """`yaml.safe_load` of `path`; None when it is missing and `missing_ok`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if missing_ok:
            return None
        raise PlanError(display, None, "file not found") from None
    except IsADirectoryError:
        raise PlanError(display, None, "is a folder, expected a YAML file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise PlanError(display, None, f"cannot read: {error}") from None
    return parse_yaml(text, display)


def parse_yaml(text: str, display: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = error.problem or error.context or "syntax error"
        raise PlanError(display, None, f"invalid YAML at {where}: {problem}") from None
    except yaml.YAMLError as error:
        raise PlanError(display, None, f"invalid YAML: {error}") from None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' when a choice is close to `word`, else ''."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_key_message(word: str, choices: Iterable[str], what: str = "setting") -> str:
    options = sorted(choices)
    return f"unknown {what}{did_you_mean(word, options)}; expected one of: {', '.join(options)}"
