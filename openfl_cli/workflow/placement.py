"""The placement decorators: where a step of a flow runs (the aggregator or each collaborator)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeVar

Placement = Literal["aggregator", "collaborator"]
F = TypeVar("F", bound=Callable[..., Any])
_MARK = "_fx_placement"


def _placed(where: Placement) -> Callable[[F], F]:
    def mark(function: F) -> F:
        if not callable(function):
            raise TypeError(f"@{where} decorates a method, got {function!r}")
        setattr(function, _MARK, where)
        return function

    return mark


aggregator = _placed("aggregator")
aggregator.__doc__ = "The step runs on the aggregator, with the aggregator's private attributes."
collaborator = _placed("collaborator")
collaborator.__doc__ = (
    "The step runs on each collaborator of a `foreach`, with that one's private attributes."
)


def placement_of(function: object) -> Placement | None:
    """Where a step runs; None when `function` is not a step."""
    where = getattr(function, _MARK, None)
    return where if where in ("aggregator", "collaborator") else None
