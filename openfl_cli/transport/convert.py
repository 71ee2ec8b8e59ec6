"""`messages` dataclasses <-> their protobuf form (the small, unary messages)."""

from __future__ import annotations

import json
import math

from openfl_cli.proto import federation_pb2 as pb
from openfl_cli.transport.assembly import StreamError
from openfl_cli.transport.messages import Action, PingReply, TaskAssignment, TaskFailure, TaskSpec, one_line


def ping_to_proto(reply: PingReply) -> pb.PingResponse:
    return pb.PingResponse(
        aggregator=reply.aggregator,
        plan_hash=reply.plan_hash,
        round_number=reply.round_number,
        rounds_to_train=reply.rounds_to_train,
    )


def ping_from_proto(message: pb.PingResponse) -> PingReply:
    return PingReply(
        aggregator=message.aggregator,
        plan_hash=message.plan_hash,
        round_number=message.round_number,
        rounds_to_train=message.rounds_to_train,
    )


def assignment_to_proto(assignment: TaskAssignment) -> pb.TaskAssignmentProto:
    return pb.TaskAssignmentProto(
        action=assignment.action.value,
        round_number=assignment.round_number,
        tasks=[
            pb.TaskProto(name=task.name, function=task.function, kwargs_json=json.dumps(task.kwargs))
            for task in assignment.tasks
        ],
        retry_after=assignment.retry_after,
        reason=assignment.reason,
    )


def assignment_from_proto(message: pb.TaskAssignmentProto) -> TaskAssignment:
    """Raises StreamError for anything a well-behaved aggregator does not send."""
    try:
        action = Action(message.action)
    except ValueError:
        raise StreamError(f"unknown action {message.action!r} from the aggregator") from None
    tasks = []
    for task in message.tasks:
        try:
            kwargs = json.loads(task.kwargs_json) if task.kwargs_json else {}
        except ValueError as exc:
            raise StreamError(f"task {task.name!r}: kwargs are not JSON: {exc}") from None
        if not isinstance(kwargs, dict):
            raise StreamError(f"task {task.name!r}: kwargs must be a JSON object")
        tasks.append(TaskSpec(name=task.name, function=task.function, kwargs=kwargs))
    retry_after = message.retry_after if math.isfinite(message.retry_after) else 0.0
    return TaskAssignment(
        action=action,
        round_number=message.round_number,
        tasks=tuple(tasks),
        retry_after=max(0.0, retry_after),
        reason=one_line(message.reason),
    )


def failure_to_proto(failure: TaskFailure) -> pb.TaskFailure:
    return pb.TaskFailure(
        round_number=failure.round_number,
        task_name=failure.task_name,
        reason=failure.reason,
        model_mismatch=failure.model_mismatch,
    )


def failure_from_proto(message: pb.TaskFailure) -> TaskFailure:
    return TaskFailure(
        round_number=message.round_number,
        task_name=message.task_name,
        reason=one_line(message.reason),
        model_mismatch=message.model_mismatch,
    )

