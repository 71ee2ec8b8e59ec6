from __future__ import annotations

import json
from pathlib import Path

import pytest

from openfl_cli.federation.metrics import (
    CallbackMetricWriter,
    JsonlMetricWriter,
    MetricRecord,
    MetricWriter,
    MultiWriter,
    TensorBoardWriter,
    open_metric_writers,
)

RECORD = MetricRecord(3, "col1", "train", "loss", 0.25, time=1700000000.5)


def _scalars(logdir: Path) -> dict[str, list[tuple[float, int, float]]]:
    """What TensorBoard itself reads from the event files in `logdir`: tag -> (wall time, step, value)."""
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    accumulator = event_accumulator.EventAccumulator(str(logdir))
    accumulator.Reload()
    return {
        tag: [(event.wall_time, event.step, event.value) for event in accumulator.Scalars(tag)]
        for tag in accumulator.Tags()["scalars"]
    }


def test_tensorboard_reads_the_writers_scalars(tmp_path: Path) -> None:
    writer = TensorBoardWriter(tmp_path / "logs")
    writer.write(RECORD)
    writer.write(MetricRecord(4, "aggregator", "aggregated_model_validation", "acc", 0.875, time=1.0))
    writer.write(MetricRecord(2**40, "aggregator", "aggregated_model_validation", "acc", 1, time=2.0))
    (path,) = (tmp_path / "logs").iterdir()
    assert path.name.startswith("events.out.tfevents.")
    # each write is on disk before it returns: read while the writer is still open
    assert _scalars(tmp_path / "logs") == {
        "col1/train/loss": [(1700000000.5, 3, 0.25)],
        "aggregator/aggregated_model_validation/acc": [(1.0, 4, 0.875), (2.0, 2**40, 1.0)],
    }
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.write(RECORD)


def test_each_writer_gets_its_own_file(tmp_path: Path) -> None:
    # a restarted aggregator in the same second must not truncate the first run's file
    with TensorBoardWriter(tmp_path) as first:
        first.write(RECORD)
    with TensorBoardWriter(tmp_path) as second:
        second.write(MetricRecord(4, "col1", "train", "loss", 0.5, time=2.0))
    assert len(list(tmp_path.iterdir())) == 2
    read = _scalars(tmp_path)["col1/train/loss"]
    assert [(step, value) for _, step, value in read] == [(3, 0.25), (4, 0.5)]


def test_the_hand_written_encoders_are_gone() -> None:
    import importlib.util

    for name in ("crc32c", "tfrecord", "event"):
        assert importlib.util.find_spec(f"openfl_cli.federation.metrics.{name}") is None


def test_jsonl_writer_appends_one_object_per_line(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "metrics.jsonl"
    with JsonlMetricWriter(path) as writer:
        writer.write(RECORD)
    with JsonlMetricWriter(path) as writer:  # a restarted aggregator appends
        writer.write_all([MetricRecord(4, "aggregator", "train", "loss", 1, time=2.0)])
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == [
        {"round": 3, "node": "col1", "task": "train", "metric": "loss", "value": 0.25, "time": 1700000000.5},
        {"round": 4, "node": "aggregator", "task": "train", "metric": "loss", "value": 1.0, "time": 2.0},
    ]
    with pytest.raises(ValueError, match="closed"):
        writer.write(RECORD)


def test_metric_record_validates_value() -> None:
    for bad in (float("nan"), float("inf"), "0.5", True):
        with pytest.raises(ValueError, match="loss"):
            MetricRecord(1, "a", "t", "loss", bad)  # type: ignore[arg-type]


def test_callback_and_multi_writer(tmp_path: Path) -> None:
    calls: list[tuple] = []

    class Broken(MetricWriter):
        def write(self, record: MetricRecord) -> None:
            raise OSError("disk full")

    multi = MultiWriter([Broken(), CallbackMetricWriter(lambda *args: calls.append(args))])
    with pytest.raises(OSError, match="disk full"):
        multi.write(RECORD)
    assert calls == [("col1", "train", "loss", 3, 0.25)]  # the other writers still got it


def test_open_metric_writers(tmp_path: Path) -> None:
    calls: list[tuple] = []
    with open_metric_writers(tmp_path, callback=lambda *a: calls.append(a)) as writers:
        writers.write(RECORD)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names[0].startswith("events.out.tfevents.") and names[1] == "metrics.jsonl"
    assert len(calls) == 1
    quiet = open_metric_writers(tmp_path / "none", write_logs=False)
    quiet.write(RECORD)
    assert not (tmp_path / "none").exists()


def test_the_tensorboard_writer_loads_no_framework(tmp_path: Path) -> None:
    """tensorboardX imports torch when it is installed: the writer keeps it out of the aggregator."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from openfl_cli.federation.metrics.writers import TensorBoardWriter\n"
        f"TensorBoardWriter({str(tmp_path)!r}).close()\n"
        "assert 'torch' not in sys.modules and 'tensorflow' not in sys.modules, 'a framework was loaded'\n"
        "import importlib.util\n"
        "assert importlib.util.find_spec('torch') is None or __import__('torch') is not None\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
