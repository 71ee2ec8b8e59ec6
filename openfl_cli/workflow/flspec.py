"""`FLSpec`: the base of a flow. A flow's steps are its methods marked `@aggregator` or `@collaborator`;
each step ends by naming the next one with `self.next(...)`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openfl_cli.errors import UsageError
from openfl_cli.workflow.placement import placement_of

if TYPE_CHECKING:
    from openfl_cli.workflow.flow_graph import FlowGraph
    from openfl_cli.workflow.runtime import LocalRuntime


@dataclass(frozen=True)
class Transition:
    """What a step's `self.next(...)` said."""

    source: str
    target: str
    foreach: str | None = None
    include: tuple[str, ...] | None = None
    exclude: tuple[str, ...] | None = None


class FLSpec:
    """Subclass it, define `start` and `end` and the steps between, then `flow.runtime = ...; flow.run()`.

    Attributes set in a step travel to the next one. Attributes whose names start with `_` stay where
    they are set (they never travel between participants). `checkpoint=True` saves every task's
    public attributes and output where Metaflow's client reads them (see `checkpoint.py`)."""

    def __init__(self, checkpoint: bool = False) -> None:
        self._fx_checkpoint = bool(checkpoint)
        self._fx_runtime: LocalRuntime | None = None
        self._fx_transition: Transition | None = None
        self._fx_step: str | None = None

    @property
    def runtime(self) -> LocalRuntime:
        runtime = getattr(self, "_fx_runtime", None)
        if runtime is None:
            raise UsageError(
                f"{type(self).__name__}: no runtime; set `flow.runtime = LocalRuntime(...)` first"
            )
        return runtime

    @runtime.setter
    def runtime(self, runtime: LocalRuntime) -> None:
        self._fx_runtime = runtime

    @property
    def checkpoint(self) -> bool:
        return bool(getattr(self, "_fx_checkpoint", False))

    def next(
        self,
        step: Callable[..., Any],
        foreach: str | None = None,
        include: Sequence[str] | None = None,
        exclude: Sequence[str] | None = None,
    ) -> None:
        """Name the step that follows this one. `foreach='collaborators'` runs it on every collaborator
        the attribute lists; `include` / `exclude` choose the attributes that travel (one or neither)."""
        current = getattr(self, "_fx_step", None) or "?"
        if getattr(step, "__self__", None) is not self:
            raise UsageError(
                f"step {current}: self.next() takes a step of this flow (self.<step>), got {step!r}"
            )
        target = _name_on_class(type(self), step)
        if placement_of(getattr(type(self), target, None)) is None:
            raise UsageError(
                f"step {current}: self.next({target}): {target} has no placement decorator"
                " (@aggregator or @collaborator)"
            )
        if include is not None and exclude is not None:
            raise UsageError(f"step {current}: self.next({target}) takes include or exclude, not both")
        if getattr(self, "_fx_transition", None) is not None:
            raise UsageError(f"step {current}: self.next() called twice")
        for name, value in (("include", include), ("exclude", exclude)):
            if value is not None and (isinstance(value, str) or not all(isinstance(v, str) for v in value)):
                raise UsageError(f"step {current}: {name} must be a list of attribute names, got {value!r}")
        if foreach is not None and not isinstance(foreach, str):
            raise UsageError(f"step {current}: foreach names an attribute (a string), got {foreach!r}")
        self._fx_transition = Transition(
            current,
            target,
            foreach,
            tuple(include) if include is not None else None,
            tuple(exclude) if exclude is not None else None,
        )

    def graph(self, path: str | Path | None = None) -> FlowGraph:
        """The flow's steps and transitions; with `path`, also written there (`.svg`, `.png` or `.pdf`
        drawn by Graphviz's dot where it is installed, DOT text beside it always)."""
        from openfl_cli.workflow.flow_graph import flow_graph

        graph = flow_graph(type(self))
        if path is not None:
            graph.write(path)
        return graph

    def run(self) -> None:
        """Check the flow, then run it on its runtime; afterwards the flow holds the aggregator's
        final attributes (never a participant's private ones)."""
        self.runtime.execute(self)


def _name_on_class(flow_class: type, method: Callable[..., Any]) -> str:
    """The name a bound method is reached by on its flow's class (a step may be assigned under another
    name than its function's)."""
    function = getattr(method, "__func__", method)
    name = str(getattr(function, "__name__", ""))
    if getattr(flow_class, name, None) is function:
        return name
    for candidate in dir(flow_class):
        if getattr(flow_class, candidate, None) is function:
            return candidate
    return name
