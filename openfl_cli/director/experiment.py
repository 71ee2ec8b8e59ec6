"""One submitted experiment at the director: what it is, where it stands, what it printed, its chain
tasks at the envoys, and its result. Everything that waits on it waits on its one condition."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from openfl_cli.errors import FxError
from openfl_cli.proto import director_pb2 as dpb

if TYPE_CHECKING:
    import numpy as np

    from openfl_cli.transport.director.state_stream import ReceivedState
    from openfl_cli.workflow.experiment import ExperimentPackage


# a watcher that went away is noticed when the next event is sent: one goes at least this often
HEARTBEAT_SECONDS = 15.0
_HEARTBEAT = dpb.ExperimentEvent(status="")


class ExperimentFailed(FxError):
    """The experiment cannot go on: an envoy rejected it, went offline, or a step failed."""


@dataclass
class ChainTaskRecord:
    id: str
    envoy: str
    step: str
    task: dpb.ChainTask
    payload: bytes
    arrays: Mapping[str, np.ndarray]
    result: ReceivedState | None = None
    error: str | None = None

    @property
    def done(self) -> bool:
        return self.result is not None or self.error is not None


@dataclass
class ExperimentRecord:
    id: str
    user: str
    package: ExperimentPackage
    collaborators: list[str]
    checkpoint: bool
    initial: ReceivedState
    status: str = "queued"
    events: list[dpb.ExperimentEvent] = field(default_factory=list)
    decisions: dict[str, dpb.Decision] = field(default_factory=dict)
    tasks: dict[str, ChainTaskRecord] = field(default_factory=dict)
    lost: dict[str, float] = field(default_factory=dict)  # envoys gone offline meanwhile -> silence
    result: tuple[bytes, Mapping[str, np.ndarray]] | None = None
    finished: dpb.Finished | None = None
    changed: threading.Condition = field(default_factory=threading.Condition)

    @property
    def name(self) -> str:
        return self.package.flow_class

    def emit(self, event: dpb.ExperimentEvent) -> None:
        with self.changed:
            self.events.append(event)
            if event.HasField("finished"):
                self.finished = event.finished
            self.changed.notify_all()

    def say(self, text: str) -> None:
        self.emit(dpb.ExperimentEvent(status=text))

    def line(self, text: str, *, stderr: bool = False, participant: str = "") -> None:
        self.emit(
            dpb.ExperimentEvent(output=dpb.OutputLine(participant=participant, stderr=stderr, text=text))
        )

    def watch(self) -> Iterator[dpb.ExperimentEvent]:
        """Every event so far, then each new one, until the one that ends it."""
        index = 0
        while True:
            with self.changed:
                quiet_until = time.monotonic() + HEARTBEAT_SECONDS
                while index >= len(self.events) and (left := quiet_until - time.monotonic()) > 0:
                    self.changed.wait(left)
                batch = self.events[index:] or [_HEARTBEAT]
                index = len(self.events)
            for event in batch:
                yield event
                if event.HasField("finished"):
                    return

    def wait_until(self, ready: Callable[[], bool], what: str, timeout: float | None = None) -> None:
        """Block until `ready()`; an envoy of this experiment going offline meanwhile fails it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.changed:
            while not ready():
                self._raise_if_lost(what)
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise ExperimentFailed(f"experiment {self.id}: no answer within {timeout:.0f} s {what}")
                self.changed.wait(left)

    def envoy_lost(self, envoy: str, silent: float) -> None:
        with self.changed:
            # a queued experiment has not met its envoys yet: it checks who is online when it starts
            if (
                envoy in self.collaborators
                and self.finished is None
                and self.status in ("reviewing", "running")
            ):
                self.lost[envoy] = silent
                for task in self.tasks.values():
                    if task.envoy == envoy and not task.done:
                        task.error = self._lost_message(envoy, silent, f"during step {task.step}")
                self.changed.notify_all()

    def _raise_if_lost(self, what: str) -> None:
        for envoy, silent in self.lost.items():
            raise ExperimentFailed(self._lost_message(envoy, silent, what))

    @staticmethod
    def _lost_message(envoy: str, silent: float, what: str) -> str:
        return f"envoy {envoy} went offline (no health report for {silent:.0f} s) {what}"
