"""Running steps: what travels on each transition, and a collaborator's chain of steps.

`run_collaborator_chain` is what every backend runs for one collaborator: from the step a `foreach`
named to the step back on the aggregator (the join), on a working copy that exists only meanwhile.
"""

from __future__ import annotations

import dataclasses
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from openfl_cli.errors import UsageError
from openfl_cli.workflow.capture import StepOutput, captured
from openfl_cli.workflow.flspec import FLSpec, Transition
from openfl_cli.workflow.placement import placement_of
from openfl_cli.workflow.snapshot import SnapshotSink, TaskSnapshot, take_snapshot


@dataclass
class ChainResult:
    """One collaborator's outcome: the attributes it sends to the join, and its steps' output."""

    name: str
    state: dict[str, Any]
    transition: Transition
    outputs: list[StepOutput] = field(default_factory=list)
    snapshots: list[TaskSnapshot] = field(default_factory=list)  # for a sink in another process


def public_state(flow: FLSpec, private: Iterable[str]) -> dict[str, Any]:
    """The attributes that may leave a participant: neither its private ones nor `_` names."""
    hidden = set(private)
    return {
        name: value for name, value in vars(flow).items() if not name.startswith("_") and name not in hidden
    }


def selected(state: dict[str, Any], transition: Transition) -> dict[str, Any]:
    """`state` filtered by the transition's include / exclude; a name that is not there is an error."""
    for names in (transition.include, transition.exclude):
        missing = sorted(set(names or ()) - set(state))
        if missing:
            raise UsageError(
                f"step {transition.source}: self.next({transition.target}) names attributes that do not"
                f" exist: {', '.join(missing)}"
            )
    if transition.include is not None:
        return {name: state[name] for name in transition.include}
    if transition.exclude is not None:
        return {name: value for name, value in state.items() if name not in transition.exclude}
    return state


def narrow(flow: FLSpec, private: Iterable[str], transition: Transition) -> None:
    """Within one participant: drop the attributes that include / exclude leave behind."""
    if transition.include is None and transition.exclude is None:
        return
    state = public_state(flow, private)
    for name in set(state) - set(selected(state, transition)):
        delattr(flow, name)


def run_step(
    flow: FLSpec,
    step: str,
    participant: str,
    *,
    inputs: Sequence[Any] | None = None,
    live: bool = True,
    private: Iterable[str] = (),
    snapshots: SnapshotSink | None = None,
) -> tuple[Transition | None, StepOutput]:
    """Run one step; return what its `self.next` said (None only after `end`) and its output.
    `snapshots` (checkpointing) takes the task's snapshot as the step ends, failed or not: a failed
    one with its traceback in its stderr."""
    flow._fx_transition = None
    flow._fx_step = step
    method: Callable[..., Any] = getattr(flow, step)
    failure: BaseException | None = None
    with captured(participant, step, live) as output:
        try:
            if inputs is None:
                method()
            else:
                method(inputs)
        except BaseException as error:  # re-raised below, once its snapshot is taken
            failure = error
    if snapshots is not None:
        done = output[0]
        if failure is not None:
            trace = "".join(traceback.format_exception(failure))
            done = dataclasses.replace(done, stderr=done.stderr + trace)
        snapshots(take_snapshot(public_state(flow, private), done, failure=failure))
    if failure is not None:
        raise failure
    transition = flow._fx_transition
    flow._fx_transition = None
    if transition is None and step != "end":
        raise UsageError(f"step {step} ended without self.next(...) (only end may)")
    return transition, output[0]


def new_flow(flow_class: type[FLSpec], state: Mapping[str, Any]) -> FLSpec:
    """A flow object holding `state`, without running the class's __init__ again (it may build a model)."""
    flow = flow_class.__new__(flow_class)
    FLSpec.__init__(flow)
    flow.__dict__.update(state)
    return flow


def run_collaborator_chain(
    flow_class: type[FLSpec],
    step: str,
    state: dict[str, Any],
    name: str,
    private: Mapping[str, Any],
    runtime: Any = None,
    live: bool = True,
    snapshots: SnapshotSink | None = None,
) -> ChainResult:
    """Collaborator `name`'s steps from `step` until a transition back to the aggregator;
    `snapshots` (checkpointing) takes each step's snapshot as the step ends."""
    flow = new_flow(flow_class, state)
    flow._fx_runtime = runtime
    flow.__dict__.update(private)
    flow.input = name  # type: ignore[attr-defined]
    outputs: list[StepOutput] = []
    while True:
        transition, output = run_step(flow, step, name, live=live, private=private, snapshots=snapshots)
        outputs.append(output)
        assert transition is not None  # only end (an aggregator step) may stop
        if transition.foreach is not None:
            raise UsageError(f"step {step}: a collaborator step cannot fan out with foreach")
        if placement_of(getattr(flow_class, transition.target)) == "aggregator":
            sent = selected(public_state(flow, private), transition)
            return ChainResult(name, sent, transition, outputs)
        narrow(flow, private, transition)
        step = transition.target
