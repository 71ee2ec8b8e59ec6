"""The questions `fx` asks, and what happens when no answer can come.

An answer may arrive from a terminal or a pipe (`echo y | fx ...`). When the input ends first (stdin
closed, `< /dev/null`, a CI job), the command stops with one usage-error line that names the question
and the option that answers it without a prompt, instead of click's bare "Aborted!". Ctrl-C still aborts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import click

from openfl_cli.errors import UsageError

T = TypeVar("T")


def confirm(question: str, *, without_prompt: str, default: bool = False) -> bool:
    """click.confirm, or a UsageError naming `question` and `without_prompt` at the end of input."""
    return _asking(question, without_prompt, lambda: click.confirm(question, default=default))


def prompt_text(question: str, *, without_prompt: str) -> str:
    """click.prompt for a line of text, or a UsageError at the end of input (as `confirm`)."""
    answer: str = _asking(question, without_prompt, lambda: click.prompt(question, type=str))
    return answer


def _asking(question: str, without_prompt: str, ask: Callable[[], T]) -> T:
    try:
        return ask()
    except click.exceptions.Abort as aborted:
        # click turns both Ctrl-C and the end of input into Abort; the EOFError stays its context
        if not isinstance(aborted.__context__, EOFError):
            raise
        click.echo()  # end the prompt's line (on stdout, where the prompt went)
        raise UsageError(
            f"no answer to {question.rstrip('?:')!r} (the input ended); {without_prompt}"
        ) from None
