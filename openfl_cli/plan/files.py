"""Reading YAML files of a plan into plain data, with errors that name the file and line."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from openfl_cli.errors import PlanError
from openfl_cli.utils.safe_yaml import MAX_YAML_CHARS, load_yaml_text


def read_yaml(path: Path, display: str, *, missing_ok: bool = False) -> Any:
    """The YAML document in `path` (see `load_yaml_text`); None when it is missing and `missing_ok`."""
    try:
        with path.open("rb") as handle:
            # 4 bytes a character at most: more than this many bytes is too large whatever they hold
            data = handle.read(4 * MAX_YAML_CHARS + 1)
        if len(data) > 4 * MAX_YAML_CHARS:
            raise PlanError(display, None, f"too large for a YAML file: over {4 * MAX_YAML_CHARS} bytes")
        text = data.decode("utf-8")
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
    """The YAML document `text`, with the bounds and one-line errors of `load_yaml_text`."""
    return load_yaml_text(text, display)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' when a choice is close to `word`, else ''."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_key_message(word: str, choices: Iterable[str], what: str = "setting") -> str:
    options = sorted(choices)
    return f"unknown {what}{did_you_mean(word, options)}; expected one of: {', '.join(options)}"
