from __future__ import annotations

import io
import json
import struct
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
from openfl_cli.federation.metrics.crc32c import crc32c, masked_crc32c
from openfl_cli.federation.metrics.event import FILE_VERSION, scalar_event
from openfl_cli.federation.metrics.tfrecord import CorruptRecordError, frame_record, read_records

RECORD = MetricRecord(3, "col1", "train", "loss", 0.25, time=1700000000.5)


def test_crc32c_known_values() -> None:
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"") == 0
    assert crc32c(bytes(32)) == 0x8A9136AA  # RFC 3720 test vector: 32 zero bytes
    assert crc32c(b"6789", crc32c(b"12345")) == 0xE3069283  # incremental


def test_masked_crc_and_framing_match_tensorflow() -> None:
    framed = frame_record(b"")
    assert framed[:8] == bytes(8)
    assert struct.unpack("<I", framed[8:12])[0] == masked_crc32c(bytes(8))
    crc = crc32c(b"abc")
    assert masked_crc32c(b"abc") == ((((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)
    assert list(read_records(io.BytesIO(frame_record(b"hello") + frame_record(b"")))) == [b"hello", b""]


def test_corrupt_and_torn_records() -> None:
    framed = bytearray(frame_record(b"payload"))
    framed[14] ^= 0xFF
    with pytest.raises(CorruptRecordError, match="data CRC"):
        list(read_records(io.BytesIO(bytes(framed))))
    good = frame_record(b"first")
    torn = good + frame_record(b"second")[:-3]
    assert list(read_records(io.BytesIO(torn))) == [b"first"]


def _fields(data: bytes) -> list[tuple[int, int, object]]:
    """A tiny protobuf decoder: (field number, wire type, value) in order."""
    out, pos = [], 0

    def varint() -> int:
        nonlocal pos
        shift = result = 0
        while True:
            byte = data[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return result

    while pos < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            value: object = varint()
        elif wire == 1:
            value, pos = struct.unpack("<d", data[pos : pos + 8])[0], pos + 8
        elif wire == 5:
            value, pos = struct.unpack("<f", data[pos : pos + 4])[0], pos + 4
        else:
            length = varint()
            value, pos = data[pos : pos + length], pos + length
        out.append((number, wire, value))
    return out


def _scalars(path: Path) -> list[tuple[float, int, str, float]]:
    with path.open("rb") as handle:
        records = list(read_records(handle))
    first = dict((n, v) for n, _, v in _fields(records[0]))
    assert first[3] == FILE_VERSION.encode()
    scalars = []
    for record in records[1:]:
        event = {n: v for n, _, v in _fields(record)}
        (value_bytes,) = [v for n, _, v in _fields(event[5]) if n == 1]  # type: ignore[arg-type]
        value = dict((n, v) for n, _, v in _fields(value_bytes))  # type: ignore[arg-type]
        scalars.append((event[1], event.get(2, 0), value[1].decode(), value[2]))  # type: ignore[union-attr]
    return scalars


def test_tensorboard_writer_writes_parsable_events(tmp_path: Path) -> None:
    writer = TensorBoardWriter(tmp_path / "logs")
    writer.write(RECORD)
    writer.write(MetricRecord(4, "aggregator", "aggregated_model_validation", "acc", 0.875, time=1.0))
    writer.close()
    (path,) = (tmp_path / "logs").iterdir()
    assert path.name.startswith("events.out.tfevents.")
    assert _scalars(path) == [
        (1700000000.5, 3, "col1/train/loss", 0.25),
        (1.0, 4, "aggregator/aggregated_model_validation/acc", 0.875),
    ]


def test_event_encoding_handles_large_and_negative_steps() -> None:
    fields = {n: v for n, _, v in _fields(scalar_event(0.0, 2**40, "t", 1.0))}
    assert fields[2] == 2**40
    fields = {n: v for n, _, v in _fields(scalar_event(0.0, -1, "t", 1.0))}
    assert fields[2] == 2**64 - 1  # int64 -1 as a varint


def test_tensorboard_reads_our_file_when_installed(tmp_path: Path) -> None:
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    with TensorBoardWriter(tmp_path) as writer:
        writer.write(RECORD)
    acc = event_accumulator.EventAccumulator(str(tmp_path))
    acc.Reload()
    (scalar,) = acc.Scalars("col1/train/loss")
    assert (scalar.step, scalar.value) == (3, 0.25)


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
