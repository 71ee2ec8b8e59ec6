"""`checkpoint=True`: every task's public attributes and output, saved where Metaflow's client reads them.

The flow hands each task's snapshot (`snapshot.py`) to a writer thread, which keys, pickles and
writes it beside the flow, in the order the tasks ran. At most a few snapshots wait for it: past
that, a slow disk slows the flow instead of filling the memory.
"""

from __future__ import annotations

import pickle
import queue
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from openfl_cli.workflow.capture import StepOutput
from openfl_cli.workflow.metaflow_format import LocalDatastore, RunTags, TaskFiles, datastore_root, run_tags
from openfl_cli.workflow.snapshot import TaskSnapshot, blob_key, take_snapshot

PARAMETERS_STEP = "_parameters"


def internal_artifacts(graph_info: Mapping[str, Any] | None, failure: str | None = None) -> dict[str, bytes]:
    """What Metaflow's client reads beside the user's attributes: the graph (Step.parent_steps and
    child_steps) and the task's outcome (Task.successful, Task.finished, Task.exception)."""
    outcome = {
        "_success": pickle.dumps(failure is None, protocol=4),
        "_task_ok": pickle.dumps(failure is None, protocol=4),
        "_exception": pickle.dumps(failure, protocol=4),
    }
    if graph_info is None:
        return outcome
    return {"_graph_info": pickle.dumps(dict(graph_info), protocol=4), **outcome}


@dataclass
class CheckpointSummary:
    pathspec: str  # FLOW/RUN, as the Metaflow client names the run
    root: Path
    tasks: int = 0
    bytes_written: int = 0
    bytes_per_round: list[int] = field(default_factory=list)  # bytes written up to each join, per join
    seconds_writing: float = 0.0  # the writer thread's busy time
    unsaved: dict[str, str] = field(default_factory=dict)  # "step.attribute" -> why
    error: str | None = None


class Checkpoint:
    """A run of one flow in the local Metaflow datastore. `submit` takes snapshots in the order their
    tasks ran and numbers them; `close` waits for the writer and says what was written.

    At most `max_pending` snapshots wait for the writer; `submit` blocks past that, so a slow disk
    slows the flow instead of filling the memory."""

    def __init__(
        self,
        flow: str,
        graph_info: Mapping[str, Any],
        joins: Iterable[str],
        root: Path | None = None,
        max_pending: int = 4,
        stream: TextIO | None = None,
    ) -> None:
        self.root = (root or datastore_root()).resolve()
        self._store = LocalDatastore(self.root, flow)
        self._tags: RunTags = run_tags()
        self._joins = set(joins)
        self._stream = stream or sys.stdout  # the flow's own stream, not a step's captured one
        self._queue: queue.Queue[tuple[TaskSnapshot, str, int] | None] = queue.Queue(max(1, max_pending))
        self._last_ms = 0
        self._next_task = 1
        self._steps: set[str] = set()
        self._told: set[str] = set()  # the unsaved attributes already reported
        now = self._stamp(time.time())
        self.run_id = self._new_run_id()
        self.summary = CheckpointSummary(f"{flow}/{self.run_id}", self.root)
        self._round_bytes = 0
        self._store.write_flow(now)
        self._store.write_run(self.run_id, self._tags, now)
        self._internal = self._store_blobs(internal_artifacts(graph_info))  # internal artifact -> key
        self._writer = threading.Thread(target=self._write_all, name="fx-checkpoint", daemon=True)
        self._writer.start()
        note = "" if self._tags.user else " (no user name found: read it under metaflow.namespace(None))"
        self._say(f"checkpoint: saving run {self.summary.pathspec} to {self.root}{note}")

    def parameters(self, state: Mapping[str, Any]) -> None:
        """The run's parameters: the flow's public attributes before `start` (Metaflow's `_parameters`
        task, which the client keeps out of the run's listing of steps)."""
        now = time.time()
        self.submit(take_snapshot(state, StepOutput("", PARAMETERS_STEP, "", "", 0.0, now)), task_id="0")

    def submit(self, snapshot: TaskSnapshot, task_id: str | None = None) -> None:
        self._report()
        if self.summary.error is not None:
            return
        if task_id is None:
            task_id = str(self._next_task)
            self._next_task += 1
        self._queue.put((snapshot, task_id, self._stamp(snapshot.started)))

    def close(self) -> CheckpointSummary:
        self._queue.put(None)
        self._writer.join()
        self._report()
        summary = self.summary
        if summary.error is not None:
            self._say(f"checkpoint: {summary.error}; the tasks after it were not saved")
            return summary
        rounds = summary.bytes_per_round
        per_round = f", {_size(sum(rounds) // len(rounds))} per round" if rounds else ""
        self._say(
            f"checkpoint: run {summary.pathspec}: {summary.tasks} tasks,"
            f" {_size(summary.bytes_written)} written{per_round}"
        )
        return summary

    def _report(self) -> None:
        """Say, from the flow's thread, which attributes the writer could not save."""
        for key, why in list(self.summary.unsaved.items()):
            if key not in self._told:
                self._told.add(key)
                step, _, name = key.partition(".")
                self._say(f"checkpoint: step {step}: attribute {name} not saved ({why})")

    # -- the writer thread ------------------------------------------------------------------------

    def _write_all(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            snapshot, task_id, created = item
            busy = time.perf_counter()
            try:
                if self.summary.error is None:
                    self._write(snapshot, task_id, created)
            except OSError as error:
                self.summary.error = f"writing to {self.root} failed: {error}"
            finally:
                self.summary.seconds_writing += time.perf_counter() - busy

    def _write(self, snapshot: TaskSnapshot, task_id: str, created: int) -> None:
        before = self._store.bytes_written
        for key, blob in snapshot.blobs.items():  # pickled in another process
            self._store.write_blob(key, blob)
        snapshot.blobs = {}
        snapshot.encode(self._store.blob_sizes, self._store.stream_blob)
        for name, why in snapshot.unsaved.items():
            self.summary.unsaved.setdefault(f"{snapshot.step}.{name}", why)
        if snapshot.step not in self._steps:
            self._store.write_step(self.run_id, snapshot.step, self._tags, created)
            self._steps.add(snapshot.step)
        metadata = {"participant": snapshot.participant} if snapshot.participant else {}
        internal = dict(self._internal)
        if snapshot.failure is not None:
            internal.update(self._store_blobs(internal_artifacts(None, snapshot.failure)))
        task = TaskFiles(
            snapshot.step,
            task_id,
            created,
            max(created, int(snapshot.finished * 1000)),
            {**snapshot.keys, **internal},
            snapshot.types,
            snapshot.stdout,
            snapshot.stderr,
            metadata,
            ok=snapshot.failure is None,
        )
        self._store.write_task(self.run_id, self._tags, task)
        written = self._store.bytes_written - before
        self.summary.bytes_written += written
        if snapshot.step != PARAMETERS_STEP:
            self.summary.tasks += 1
        self._round_bytes += written
        if snapshot.step in self._joins:
            self.summary.bytes_per_round.append(self._round_bytes)
            self._round_bytes = 0

    def _store_blobs(self, blobs: Mapping[str, bytes]) -> dict[str, str]:
        """Write pickled artifacts; their keys by name."""
        keys = {name: blob_key(blob) for name, blob in blobs.items()}
        for name, blob in blobs.items():
            self._store.write_blob(keys[name], blob)
        return keys

    # -- helpers ----------------------------------------------------------------------------------

    def _stamp(self, seconds: float) -> int:
        """Milliseconds, strictly increasing in the order of submission: the client orders a step's
        tasks (and a run's steps) by creation time, newest first."""
        self._last_ms = max(int(seconds * 1000), self._last_ms + 1)
        return self._last_ms

    def _new_run_id(self) -> str:
        run_id = int(time.time() * 1e6)  # Metaflow's local runs are numbered by their start in µs
        while (self.root / self._store.flow / str(run_id)).exists():
            run_id += 1
        return str(run_id)

    def _say(self, line: str) -> None:
        self._stream.write(line + "\n")
        self._stream.flush()


def _size(count: int) -> str:
    if count < 1024:
        return f"{count} B"
    value = float(count)
    for unit in ("KB", "MB", "GB"):
        value /= 1024
        if value < 1024 or unit == "GB":
            break
    return f"{value:.1f} {unit}"
