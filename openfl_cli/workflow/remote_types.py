"""A flow's transitions, step outputs and snapshots as the director's protocol carries them, and what
the data that comes back must look like before the runtime uses it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from openfl_cli.errors import FxError
from openfl_cli.proto import director_pb2 as dpb
from openfl_cli.workflow.capture import StepOutput
from openfl_cli.workflow.flspec import Transition
from openfl_cli.workflow.snapshot import TaskSnapshot, take_snapshot


def transition_to_proto(transition: Transition) -> dpb.TransitionProto:
    return dpb.TransitionProto(
        source=transition.source,
        target=transition.target,
        foreach=transition.foreach or "",
        has_include=transition.include is not None,
        include=list(transition.include or ()),
        has_exclude=transition.exclude is not None,
        exclude=list(transition.exclude or ()),
    )


def transition_from_proto(message: dpb.TransitionProto) -> Transition:
    return Transition(
        message.source,
        message.target,
        message.foreach or None,
        tuple(message.include) if message.has_include else None,
        tuple(message.exclude) if message.has_exclude else None,
    )


def output_to_proto(output: StepOutput) -> dpb.StepOutputProto:
    return dpb.StepOutputProto(
        participant=output.participant,
        step=output.step,
        stdout=output.stdout,
        stderr=output.stderr,
        seconds=output.seconds,
        started=output.started,
    )


def output_from_proto(message: dpb.StepOutputProto, participant: str) -> StepOutput:
    """`participant`: who really sent it (an envoy speaks for its own collaborator only)."""
    return StepOutput(
        participant, message.step, message.stdout, message.stderr, message.seconds, message.started
    )


def snapshot_info(snapshot: TaskSnapshot) -> dpb.SnapshotInfo:
    return dpb.SnapshotInfo(
        step=snapshot.step,
        participant=snapshot.participant,
        stdout=snapshot.stdout,
        stderr=snapshot.stderr,
        started=snapshot.started,
        finished=snapshot.finished,
        failure=snapshot.failure or "",
    )


def snapshot_from_info(info: dpb.SnapshotInfo, values: dict[str, Any], participant: str) -> TaskSnapshot:
    """A snapshot taken at an envoy, rebuilt at the director for its checkpoint."""
    output = StepOutput(
        participant, info.step, info.stdout, info.stderr, max(0.0, info.finished - info.started), info.started
    )
    return take_snapshot(values, output, failure=_Failure(info.failure) if info.failure else None)


class _Failure(Exception):
    """What a step raised at an envoy, known here by its text only."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def chain_payload(decoded: Any, snapshots: int, sender: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The state and the snapshots' attributes of a chain result, checked for shape."""
    if not isinstance(decoded, dict) or not isinstance(decoded.get("state"), dict):
        raise FxError(f"envoy {sender} sent a chain result without its state")
    state, values = decoded["state"], decoded.get("snapshots", [])
    if not _names(state) or not isinstance(values, list) or len(values) != snapshots:
        raise FxError(f"envoy {sender} sent a malformed chain result")
    if not all(isinstance(item, dict) and _names(item) for item in values):
        raise FxError(f"envoy {sender} sent malformed snapshots")
    return state, values


def _names(state: dict[Any, Any]) -> bool:
    return all(isinstance(name, str) and name.isidentifier() for name in state)


def check_collaborators(names: Sequence[str]) -> list[str]:
    """A FederatedRuntime's collaborator names: a non-empty list of distinct names."""
    if isinstance(names, str) or not names or not all(isinstance(n, str) and n for n in names):
        raise FxError(f"collaborators must be a non-empty list of envoy names, got {names!r}")
    duplicates = sorted({n for n in names if list(names).count(n) > 1})
    if duplicates:
        raise FxError(f"collaborator names must be unique: {', '.join(duplicates)}")
    return list(names)
