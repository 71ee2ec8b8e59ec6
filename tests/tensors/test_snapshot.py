"""`.pbuf` snapshots: round trips, byte layout, OpenFL files both ways, atomicity, damaged files."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import pytest

from openfl_cli.errors import UsageError
from openfl_cli.proto.model_pb2 import MetadataProto, ModelProto, NamedTensorProto
from openfl_cli.tensors.codec import SUPPORTED_DTYPES
from openfl_cli.tensors.snapshot import Snapshot, load_snapshot, save_snapshot


def _model() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    tensors: dict[str, np.ndarray] = {
        "conv.weight": rng.standard_normal((4, 3, 2, 2)).astype(np.float32),
        "scalar": np.array(2.5, dtype=np.float64),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "strided": np.arange(40, dtype=np.int64).reshape(5, 8)[::2, 1::3],
        "big_endian": np.arange(6, dtype=">f4").reshape(3, 2),
        "__opt__.step": np.array(12, dtype=np.int32),
    }
    for name in SUPPORTED_DTYPES:
        tensors[f"dtype.{name}"] = (np.arange(5) % 3).astype(name)
    return tensors


def _assert_same(loaded: Mapping[str, np.ndarray], expected: Mapping[str, np.ndarray]) -> None:
    assert list(loaded) == list(expected)
    for name, array in expected.items():
        assert loaded[name].dtype == array.dtype.newbyteorder("="), name
        assert loaded[name].shape == array.shape, name
        np.testing.assert_array_equal(loaded[name], array)


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "save" / "init.pbuf"
    tensors = _model()
    save_snapshot(path, tensors, round_number=7, tags=("model", "trained"))
    snapshot = load_snapshot(path)
    assert isinstance(snapshot, Snapshot)
    assert snapshot.round_number == 7
    assert set(snapshot.tags.values()) == {("model", "trained")}
    _assert_same(snapshot.tensors, tensors)
    # fresh, aligned, writable buffers: callers may update the model in place
    for array in snapshot.tensors.values():
        assert array.flags.writeable and array.flags.aligned and array.flags.c_contiguous
    assert (path.stat().st_mode & 0o777) == 0o644


def test_empty_model_round_trips(tmp_path: Path) -> None:
    save_snapshot(tmp_path / "m.pbuf", {}, round_number=3)
    assert load_snapshot(tmp_path / "m.pbuf").tensors == {}


def test_streamed_file_is_what_protobuf_writes(tmp_path: Path) -> None:
    """The tensor-by-tensor writer produces the canonical serialization of the whole message."""
    path = tmp_path / "m.pbuf"
    tensors = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "n": np.array(1, dtype=np.int64)}
    tensors["e"] = np.zeros(0, dtype=np.float32)
    save_snapshot(path, tensors, round_number=2)
    whole = ModelProto(tensor_count=3)
    for name, array in tensors.items():
        proto = whole.tensors.add(
            name=name, round_number=2, lossless=True, tags=["model"], data_bytes=array.tobytes()
        )
        proto.dtype, proto.shape[:] = array.dtype.name, array.shape
        proto.data_crc32 = zlib.crc32(array.tobytes())
        if array.dtype == np.float32:
            proto.transformer_metadata.add(int_list=array.shape)
    assert path.read_bytes() == whole.SerializeToString()


def _write_openfl_snapshot(path: Path, tensors: Mapping[str, np.ndarray], round_number: int) -> None:
    """What OpenFL's construct_model_proto + dump_proto write with NoCompressionPipeline."""
    model = ModelProto(
        tensors=[
            NamedTensorProto(
                name=name,
                round_number=round_number,
                lossless=True,
                report=False,
                tags=["model"],
                transformer_metadata=[MetadataProto(int_list=list(array.shape))],
                data_bytes=array.astype(np.float32).tobytes(order="C"),
            )
            for name, array in tensors.items()
        ]
    )
    path.write_bytes(model.SerializeToString())


def test_openfl_snapshot_is_read(tmp_path: Path) -> None:
    path = tmp_path / "init.pbuf"
    tensors = {
        "dense/kernel:0": np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4),
        "dense/bias:0": np.zeros(4, dtype=np.float32),
        "scalar": np.array(3.0, dtype=np.float32),
    }
    _write_openfl_snapshot(path, tensors, round_number=4)
    snapshot = load_snapshot(path)
    assert snapshot.round_number == 4
    _assert_same(snapshot.tensors, tensors)


def test_openfl_reads_float32_snapshots_written_by_fx(tmp_path: Path) -> None:
    path = tmp_path / "best.pbuf"
    tensors = {"w": np.arange(24, dtype=np.float32).reshape(2, 3, 4), "s": np.array(1.5, np.float32)}
    save_snapshot(path, tensors, round_number=9)
    model = ModelProto.FromString(path.read_bytes())
    for proto in model.tensors:  # OpenFL's Float32NumpyArrayToBytes.backward
        shape = tuple(proto.transformer_metadata[0].int_list)
        array = np.frombuffer(proto.data_bytes, dtype=np.float32).reshape(shape)
        np.testing.assert_array_equal(array, tensors[proto.name])
        assert proto.round_number == 9 and proto.lossless and list(proto.tags) == ["model"]


def test_openfl_compressed_snapshot_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "kc.pbuf"
    model = ModelProto()
    model.tensors.add(
        name="w",
        data_bytes=b"\x01\x02",
        transformer_metadata=[MetadataProto(int_to_float={0: 0.5}), MetadataProto(int_list=[2])],
    )
    path.write_bytes(model.SerializeToString())
    with pytest.raises(UsageError, match=r"kc\.pbuf.*'w'.*compression pipeline"):
        load_snapshot(path)


class _FailingMapping(Mapping[str, np.ndarray]):
    """Yields one good tensor, then fails the way a bug or a full disk would, mid-write."""

    def __iter__(self) -> Iterator[str]:
        return iter(["a", "b"])

    def __len__(self) -> int:
        return 2

    def __getitem__(self, name: str) -> np.ndarray:
        if name == "b":
            raise RuntimeError("boom")
        return np.ones(1000, dtype=np.float32)


@pytest.mark.parametrize(
    ("tensors", "error"),
    [
        (_FailingMapping(), RuntimeError),
        ({"a": np.ones(3), "b": np.array(["x"], dtype=object)}, ValueError),
        ({"a": np.ones(3), "": np.ones(2)}, ValueError),
    ],
)
def test_failed_write_keeps_old_file_and_leaves_no_temp(
    tmp_path: Path, tensors: Mapping[str, np.ndarray], error: type[Exception]
) -> None:
    path = tmp_path / "last.pbuf"
    old = {"old": np.arange(3, dtype=np.float32)}
    save_snapshot(path, old)
    before = path.read_bytes()
    with pytest.raises(error):
        save_snapshot(path, tensors)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pbuf"]
    _assert_same(load_snapshot(path).tensors, old)


def test_process_killed_while_saving_leaves_old_file(tmp_path: Path) -> None:
    path = tmp_path / "last.pbuf"
    save_snapshot(path, {"old": np.arange(3, dtype=np.float32)})
    before = path.read_bytes()
    script = textwrap.dedent(
        f"""
        import os, signal
        import numpy as np
        from openfl_cli.tensors.snapshot import save_snapshot

        class Dying(dict):
            def items(self):
                yield "a", np.ones(1 << 20, dtype=np.float32)
                os.kill(os.getpid(), signal.SIGKILL)

        save_snapshot({str(path)!r}, Dying())
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()
    assert path.read_bytes() == before


@pytest.mark.parametrize("round_number", [-1, 2**31, 1.0, True])
def test_bad_round_number_is_refused(tmp_path: Path, round_number: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        save_snapshot(tmp_path / "m.pbuf", {}, round_number=round_number)  # type: ignore[arg-type]
    assert not (tmp_path / "m.pbuf").exists()


def test_tags_must_be_strings(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        save_snapshot(tmp_path / "m.pbuf", {}, tags="model")


def test_every_truncation_is_detected(tmp_path: Path) -> None:
    whole_path = tmp_path / "whole.pbuf"
    save_snapshot(whole_path, {"a": np.arange(5, dtype=np.float32), "b": np.ones((2, 2), np.int8)})
    data = whole_path.read_bytes()
    cut = tmp_path / "cut.pbuf"
    for size in range(len(data)):
        cut.write_bytes(data[:size])
        with pytest.raises(UsageError, match=r"cut\.pbuf: "):
            load_snapshot(cut)


def _corrupt_cases() -> dict[str, bytes]:
    def tensor(**fields: object) -> bytes:
        return ModelProto(tensors=[NamedTensorProto(**fields)], tensor_count=1).SerializeToString()

    good = {"name": "w", "dtype": "float32", "shape": [2], "data_bytes": b"\0" * 8}
    two = ModelProto(
        tensors=[NamedTensorProto(**good), NamedTensorProto(**good)], tensor_count=2
    ).SerializeToString()
    rounds = ModelProto(
        tensors=[NamedTensorProto(**good), NamedTensorProto(**{**good, "name": "v", "round_number": 3})],
        tensor_count=2,
    ).SerializeToString()
    late = (
        tensor(**good) + ModelProto(tensors=[NamedTensorProto(**{**good, "name": "v"})]).SerializeToString()
    )
    bad_name = bytearray(tensor(**{**good, "name": "ab"}))
    bad_name[bad_name.index(b"ab")] = 0xFF
    return {
        "garbage": b"\xff" * 32,
        "text": b"not a snapshot\n",
        "bad dtype": tensor(**{**good, "dtype": "object"}),
        "size mismatch": tensor(**{**good, "shape": [3]}),
        "negative openfl shape": tensor(
            name="w", data_bytes=b"\0" * 8, transformer_metadata=[MetadataProto(int_list=[-2])]
        ),
        "no layout": tensor(name="w", data_bytes=b"\0" * 8),
        "no name": tensor(**{**good, "name": ""}),
        "invalid utf-8 name": bytes(bad_name),
        "duplicate": two,
        "mixed rounds": rounds,
        "tensor after end": late,
        "count mismatch": ModelProto(tensors=[NamedTensorProto(**good)], tensor_count=5).SerializeToString(),
        "huge length": b"\x0a\xff\xff\xff\xff\x0f",
        "group wire type": b"\x0b\x0c",
    }


@pytest.mark.parametrize(("case", "data"), list(_corrupt_cases().items()))
def test_corrupt_files_raise_usage_error_naming_the_file(tmp_path: Path, case: str, data: bytes) -> None:
    path = tmp_path / "bad.pbuf"
    path.write_bytes(data)
    with pytest.raises(UsageError, match=r"bad\.pbuf: ") as caught:
        load_snapshot(path)
    assert "Traceback" not in str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"nope\.pbuf: cannot read"):
        load_snapshot(tmp_path / "nope.pbuf")


def test_unknown_fields_from_a_newer_writer_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "m.pbuf"
    save_snapshot(path, {"w": np.ones(2, np.float32)})
    path.write_bytes(b"\xf8\x07\x05" + path.read_bytes())  # field 127, varint 5
    _assert_same(load_snapshot(path).tensors, {"w": np.ones(2, np.float32)})


def test_reading_never_parses_a_whole_model_proto(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Parsing one ModelProto is what caps a file at protobuf's 2 GiB; the reader goes tensor by tensor."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("whole ModelProto built")

    monkeypatch.setattr(ModelProto, "FromString", refuse)
    monkeypatch.setattr(ModelProto, "ParseFromString", refuse)
    tensors = {f"t{i}": np.full(1000, i, dtype=np.float32) for i in range(3)}
    save_snapshot(tmp_path / "m.pbuf", tensors)
    _assert_same(load_snapshot(tmp_path / "m.pbuf").tensors, tensors)
