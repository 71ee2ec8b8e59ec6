"""Checking a flow before it runs: its steps, and every `self.next(...)` written in them.

The calls are read from each step's source (when Python has it); what only shows at run time (the
value `foreach` names, a `next` built dynamically) is checked again when the step calls it.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from dataclasses import dataclass

from openfl_cli.errors import UsageError
from openfl_cli.workflow.placement import Placement, placement_of


@dataclass(frozen=True)
class NextCall:
    source: str
    target: str
    has_foreach: bool
    foreach: str | None = None  # the attribute named, where the source spells it as a string


def steps_of(flow_class: type) -> dict[str, Placement]:
    found: dict[str, Placement] = {}
    for name in dir(flow_class):
        where = placement_of(getattr(flow_class, name, None))
        if where is not None:
            found[name] = where
    return found


def next_calls(flow_class: type, steps: dict[str, Placement]) -> list[NextCall]:
    """Every `self.next(...)` written in the flow's steps, in the order of the steps' names."""
    return [call for step in sorted(steps) for call in _next_calls(flow_class, step)]


def joins_of(steps: dict[str, Placement], calls: list[NextCall]) -> set[str]:
    """The aggregator steps that collaborator steps return to."""
    return {
        call.target
        for call in calls
        if steps.get(call.source) == "collaborator" and steps.get(call.target) == "aggregator"
    }


def check_flow(flow_class: type) -> dict[str, Placement]:
    """The flow's steps; raises UsageError naming the step at the first problem."""
    flow = flow_class.__name__
    steps = steps_of(flow_class)
    for required in ("start", "end"):
        if required not in steps:
            what = "is not a step (mark it @aggregator)" if hasattr(flow_class, required) else "is missing"
            raise UsageError(f"{flow}: the step `{required}` {what}; a flow starts at start and ends at end")
    for name in ("start", "end"):
        if steps[name] != "aggregator":
            raise UsageError(f"{flow}: step {name} must run on the aggregator (@aggregator)")
    calls = next_calls(flow_class, steps)
    joins: set[str] = set()
    for call in calls:
        target = getattr(flow_class, call.target, None)
        if call.target not in steps:
            if callable(target):
                raise UsageError(
                    f"{flow}: step {call.source}: self.next({call.target}): {call.target} has no placement"
                    " decorator (@aggregator or @collaborator)"
                )
            raise UsageError(f"{flow}: step {call.source}: self.next({call.target}): no such step")
        source_place, target_place = steps[call.source], steps[call.target]
        if source_place == "aggregator" and target_place == "collaborator" and not call.has_foreach:
            raise UsageError(
                f"{flow}: step {call.source}: the collaborator step {call.target} is reached without"
                " foreach (write self.next(..., foreach='collaborators'))"
            )
        if source_place == "collaborator" and call.has_foreach:
            raise UsageError(f"{flow}: step {call.source}: a collaborator step cannot fan out with foreach")
        if source_place == "collaborator" and target_place == "aggregator":
            joins.add(call.target)
    for join in sorted(joins):
        check_join(flow_class, join)
    return steps


def check_join(flow_class: type, name: str) -> None:
    parameters = list(inspect.signature(getattr(flow_class, name)).parameters.values())[1:]
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) != 1:
        raise UsageError(
            f"{flow_class.__name__}: step {name} joins the collaborators and must take their inputs:"
            f" def {name}(self, inputs)"
        )


def _next_calls(flow_class: type, step: str) -> list[NextCall]:
    try:
        source = textwrap.dedent(inspect.getsource(getattr(flow_class, step)))
    except (OSError, TypeError):
        return []  # no source (built at run time): checked when the step runs
    calls = []
    for node in ast.walk(ast.parse(source)):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "next"
            and _is_self(node.func.value)
            and node.args
            and isinstance(node.args[0], ast.Attribute)
            and _is_self(node.args[0].value)
        ):
            continue
        given = [keyword.value for keyword in node.keywords if keyword.arg == "foreach"] + node.args[1:2]
        named = given[0].value if given and isinstance(given[0], ast.Constant) else None
        calls.append(
            NextCall(step, node.args[0].attr, bool(given), named if isinstance(named, str) else None)
        )
    return calls


def _is_self(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id == "self"
