"""Metric writers (`write_logs: true`): JSON lines, TensorBoard event files, a user callback, fan-out.

Each `write` reaches the file before it returns (flushed), so a killed aggregator loses nothing
already reported. Writers are safe to call from several threads.
"""

from __future__ import annotations

import importlib
import itertools
import json
import os
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from openfl_cli.federation.metrics.record import MetricRecord

# f(node, task, metric, round, value): the plan's `log_metric_callback`.
MetricCallback = Callable[[str, str, str, int, float], object]

_WRITER_NUMBERS = itertools.count(1)  # TensorBoard files opened by this process


class MetricWriter(ABC):
    @abstractmethod
    def write(self, record: MetricRecord) -> None: ...

    def write_all(self, records: Iterable[MetricRecord]) -> None:
        for record in records:
            self.write(record)

    def close(self) -> None:
        return None

    def __enter__(self) -> MetricWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class _FileWriter(MetricWriter):
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._handle: IO[bytes] | None = path.open("ab")

    def _append(self, data: bytes) -> None:
        with self._lock:
            if self._handle is None:
                raise ValueError(f"metric writer for {self.path} is closed")
            self._handle.write(data)
            self._handle.flush()

    def close(self) -> None:
        with self._lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None


class JsonlMetricWriter(_FileWriter):
    """Appends one JSON object per line: round, node, task, metric, value, time."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(Path(path))

    def write(self, record: MetricRecord) -> None:
        line = json.dumps(record.as_json(), separators=(",", ":"), allow_nan=False) + "\n"
        self._append(line.encode("utf-8"))


class TensorBoardWriter(MetricWriter):
    """Writes `events.out.tfevents.<time>.<host>.<ns>.<pid>.<n>` in `logdir` through tensorboardX: scalars
    tagged node/task/metric, step = round, the record's own wall time. A new file per writer, as
    TensorBoard expects; each event is flushed as it is written (tensorboardX's queued writer would
    hold it back)."""

    def __init__(self, logdir: str | Path, filename_suffix: str = "") -> None:
        _import_tensorboardx()
        from tensorboardX.event_file_writer import EventsWriter  # type: ignore[import-untyped]

        directory = Path(logdir)
        directory.mkdir(parents=True, exist_ok=True)
        # tensorboardX names files by the second and truncates: the nanosecond clock (so that names sort
        # in the order the files were opened, as TensorBoard reads them), the pid and a counter keep
        # them apart
        suffix = f".{time.time_ns()}.{os.getpid()}.{next(_WRITER_NUMBERS)}{filename_suffix}"
        self._lock = threading.Lock()
        self._events: Any = EventsWriter(str(directory / "events"), suffix)
        self.path = Path(self._events._file_name)

    def write(self, record: MetricRecord) -> None:
        from tensorboardX.proto.event_pb2 import Event  # type: ignore[import-untyped]
        from tensorboardX.proto.summary_pb2 import Summary  # type: ignore[import-untyped]

        tag = f"{record.node}/{record.task}/{record.metric}"
        summary = Summary(value=[Summary.Value(tag=tag, simple_value=record.value)])
        event = Event(wall_time=record.time, step=record.round_number, summary=summary)
        with self._lock:
            if self._events is None:
                raise ValueError(f"metric writer for {self.path} is closed")
            self._events.write_event(event)
            self._events.flush()

    def close(self) -> None:
        with self._lock:
            if self._events is not None:
                self._events.close()
                self._events = None


_IMPORT_LOCK = threading.Lock()


def _import_tensorboardx() -> None:
    """Import tensorboardX without PyTorch: its package imports `torch` whenever it is installed (only
    to accept torch tensors, which fx never gives it), +2.4 s and +200 MB in an aggregator that would
    otherwise never load a framework. Blocked only for this import, and only if nobody loaded torch."""
    with _IMPORT_LOCK:
        if "tensorboardX" in sys.modules or "torch" in sys.modules:
            importlib.import_module("tensorboardX")
            return
        sys.modules["torch"] = None  # type: ignore[assignment]  # `import torch` raises ImportError
        try:
            importlib.import_module("tensorboardX")
        finally:
            if sys.modules.get("torch", ...) is None:
                del sys.modules["torch"]


class CallbackMetricWriter(MetricWriter):
    """Calls the user's `log_metric_callback(node, task, metric, round, value)`."""

    def __init__(self, callback: MetricCallback) -> None:
        self.callback = callback

    def write(self, record: MetricRecord) -> None:
        self.callback(record.node, record.task, record.metric, record.round_number, record.value)


class MultiWriter(MetricWriter):
    """Writes to every writer; one failing writer does not starve the others (the first error is
    raised after all were tried)."""

    def __init__(self, writers: Iterable[MetricWriter]) -> None:
        self.writers = list(writers)

    def write(self, record: MetricRecord) -> None:
        self._each(lambda writer: writer.write(record))

    def close(self) -> None:
        self._each(lambda writer: writer.close())

    def _each(self, action: Callable[[MetricWriter], None]) -> None:
        first: BaseException | None = None
        for writer in self.writers:
            try:
                action(writer)
            except Exception as exc:
                first = first or exc
        if first is not None:
            raise first


def open_metric_writers(
    logs_dir: str | Path, *, write_logs: bool = True, callback: MetricCallback | None = None
) -> MultiWriter:
    """The writers a participant uses: `logs/metrics.jsonl` and TensorBoard files in `logs/` when
    `write_logs`, plus the callback when given (an empty MultiWriter is a valid no-op)."""
    writers: list[MetricWriter] = []
    if write_logs:
        writers += [JsonlMetricWriter(Path(logs_dir) / "metrics.jsonl"), TensorBoardWriter(logs_dir)]
    if callback is not None:
        writers.append(CallbackMetricWriter(callback))
    return MultiWriter(writers)
