"""Plain data that crosses the wire between collaborator and aggregator.

The transport layer defines them so that it depends on nothing above it; the federation layer
builds and reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from openfl_cli.errors import FxError

MAX_REASON_CHARS = 1000  # a peer's reason (a failed task, a stopped experiment) as logged and passed on


def one_line(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """A peer's free text as one printable line of at most `limit` characters (it reaches logs)."""
    line = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


class Action(str, Enum):
    RUN = "run"  # run the tasks of `round_number`
    WAIT = "wait"  # nothing to do yet: ask again (the long poll timed out)
    QUIT = "quit"  # the experiment is over
    ABORT = "abort"  # the experiment stopped on an error (`TaskAssignment.reason` says which)


@dataclass(frozen=True)
class TaskSpec:
    """One task of a round: the runner function to call and its keyword arguments (JSON-safe)."""

    name: str
    function: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskAssignment:
    action: Action
    round_number: int = 0
    tasks: tuple[TaskSpec, ...] = ()
    retry_after: float = 0.0
    reason: str = ""  # with ABORT: why, in one line


@dataclass(frozen=True)
class TaskFailure:
    """A collaborator's report that a task of a round failed (its exception, in one line).
    `model_mismatch`: the global model does not fit the collaborator's own model."""

    round_number: int
    task_name: str
    reason: str
    model_mismatch: bool = False


@dataclass(frozen=True)
class PingReply:
    aggregator: str
    plan_hash: str
    round_number: int
    rounds_to_train: int


class RefusalCode(str, Enum):
    NOT_AUTHORIZED = "not authorized"
    PLAN_MISMATCH = "plan mismatch"
    LATE = "late"  # result for a round that is closed
    DUPLICATE = "duplicate"  # a result the aggregator has (or is receiving): a retry after a lost reply
    INVALID = "invalid"  # malformed, wrong shape/dtype, non-finite values, oversized
    UNKNOWN_TASK = "unknown task"
    BUSY = "busy"  # the sender holds as many calls as it may at once: try again after one ends


class Refused(Exception):
    """The aggregator refuses a call; the collaborator prints `<code>: <reason>`."""

    def __init__(self, code: RefusalCode, reason: str) -> None:
        self.code = code
        self.reason = reason
        super().__init__(f"{code.value}: {reason}")


class AggregatorRefused(Refused, FxError):
    """A refusal received from the aggregator (over any link): a `Refused` for the collaborator's
    logic, and an `FxError` so that the CLI prints it as one line. Never retried."""

    exit_code = 2


class StreamError(ValueError):
    """Input from the peer that is refused (an INVALID refusal); the message is the reason it sees."""


@dataclass(frozen=True)
class SendReport:
    """What an upload moved: the tensors' decoded size and the bytes that travelled (after compression)."""

    raw_bytes: int
    sent_bytes: int
