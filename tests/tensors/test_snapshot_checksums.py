"""`.pbuf` snapshots carry a CRC-32 per tensor (data_crc32): written always, checked when present."""

from __future__ import annotations

import time
import zlib
from pathlib import Path

import numpy as np
import pytest

import openfl_cli.tensors.snapshot as snapshot_module
from openfl_cli.errors import UsageError
from openfl_cli.proto.model_pb2 import ModelProto, NamedTensorProto
from openfl_cli.tensors.snapshot import load_snapshot, save_snapshot
from openfl_cli.tensors.wire import LENGTH_DELIMITED, encode_tag, encode_varint

# past the size from which the checksum runs on a second thread, beside the I/O
_LARGE = snapshot_module._PARALLEL_BYTES + 12345
_TENSOR_TAG = encode_tag(ModelProto.TENSORS_FIELD_NUMBER, LENGTH_DELIMITED)


def _model() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {
        "small": rng.standard_normal((7, 5)).astype(np.float32),
        "ints": np.arange(11, dtype=np.int64),
        "empty": np.zeros((0, 4), dtype=np.float32),
        "large": rng.integers(0, 256, _LARGE, dtype=np.uint8),
    }


def _assert_same(loaded: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert list(loaded) == list(expected)
    for name, array in expected.items():
        assert loaded[name].dtype == array.dtype and loaded[name].shape == array.shape, name
        np.testing.assert_array_equal(loaded[name], array)


def test_round_trip_writes_and_checks_every_checksum(tmp_path: Path) -> None:
    path = tmp_path / "m.pbuf"
    tensors = _model()
    save_snapshot(path, tensors)
    _assert_same(load_snapshot(path).tensors, tensors)
    records = ModelProto.FromString(path.read_bytes()).tensors
    assert [record.name for record in records] == list(tensors)
    for record in records:
        assert record.HasField("data_crc32"), record.name
        assert record.data_crc32 == zlib.crc32(tensors[record.name].tobytes()), record.name


@pytest.mark.parametrize("tensor", ["small", "ints", "large"])
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_flipped_bit_in_tensor_data_is_refused_naming_the_tensor(
    tmp_path: Path, tensor: str, where: str
) -> None:
    path = tmp_path / "m.pbuf"
    tensors = _model()
    save_snapshot(path, tensors)
    data = bytearray(path.read_bytes())
    payload = tensors[tensor].tobytes()
    start = data.find(payload)
    assert start > 0 and data.find(payload, start + 1) == -1  # the tensor's bytes, exactly once
    offset = start + {"first": 0, "middle": len(payload) // 2, "last": len(payload) - 1}[where]
    data[offset] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(UsageError) as info:
        load_snapshot(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: corrupt model snapshot: tensor {tensor!r}")
    assert "checksum" in message


def test_openfl_snapshot_without_checksums_loads(tmp_path: Path) -> None:
    """As OpenFL writes it: NoCompressionPipeline float32 bytes, shape in the metadata, no field 102."""
    tensors = {
        "conv.weight": np.random.default_rng(5).standard_normal((4, 3, 2)).astype(np.float32),
        "bias": np.arange(3, dtype=np.float32),
    }
    model = ModelProto()
    for name, array in tensors.items():
        proto = model.tensors.add(name=name, round_number=4, lossless=True, report=False, tags=["model"])
        proto.transformer_metadata.add(int_list=array.shape)
        proto.data_bytes = array.tobytes()
    path = tmp_path / "openfl.pbuf"
    path.write_bytes(model.SerializeToString())
    assert not any(
        record.HasField("data_crc32") for record in ModelProto.FromString(path.read_bytes()).tensors
    )
    snapshot = load_snapshot(path)
    assert snapshot.round_number == 4
    _assert_same(snapshot.tensors, tensors)


def test_checksum_of_another_tensor_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.pbuf"
    save_snapshot(path, _model())
    model = ModelProto.FromString(path.read_bytes())
    small, ints = model.tensors[0], model.tensors[1]
    small.data_crc32, ints.data_crc32 = ints.data_crc32, small.data_crc32
    path.write_bytes(model.SerializeToString())
    with pytest.raises(UsageError, match=r"tensor 'small': its bytes do not match their checksum"):
        load_snapshot(path)


def test_checksum_before_the_data_is_checked_too(tmp_path: Path) -> None:
    """Protobuf fields may come in any order: a checksum ahead of data_bytes is still verified."""
    array = np.arange(6, dtype=np.int32)
    fields = {"name": "w", "dtype": "int32", "shape": [6], "data_bytes": array.tobytes()}
    good = zlib.crc32(array.tobytes())
    for crc, ok in [(good, True), (good ^ 1, False)]:
        record = (
            NamedTensorProto(data_crc32=crc).SerializeToString()
            + NamedTensorProto(**fields).SerializeToString()
        )
        path = tmp_path / f"{ok}.pbuf"
        count = ModelProto(tensor_count=1).SerializeToString()
        path.write_bytes(_TENSOR_TAG + encode_varint(len(record)) + record + count)
        if ok:
            np.testing.assert_array_equal(load_snapshot(path).tensors["w"], array)
        else:
            with pytest.raises(UsageError, match="tensor 'w': its bytes do not match"):
                load_snapshot(path)


def test_failing_checksum_thread_fails_the_save_and_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.pbuf"
    save_snapshot(path, {"w": np.ones(3, dtype=np.float32)})
    before = path.read_bytes()

    def broken(data: object, value: int = 0) -> int:
        raise MemoryError("checksum thread failed")

    monkeypatch.setattr(snapshot_module.zlib, "crc32", broken)
    with pytest.raises(MemoryError, match="checksum thread failed"):
        save_snapshot(path, {"large": np.zeros(_LARGE, dtype=np.uint8)})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pbuf"]


def test_large_tensor_round_trip_cost(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """64 MB round trip with checksums vs with a free stand-in checksum; printed, not asserted
    (timings on a shared machine are noise; run with -s to see them)."""
    array = np.random.default_rng(0).random(16 * 2**20, dtype=np.float32)  # 64 MiB
    path = tmp_path / "big.pbuf"

    def round_trip() -> float:
        times = []
        for _ in range(3):
            start = time.perf_counter()
            save_snapshot(path, {"w": array})
            loaded = load_snapshot(path).tensors["w"]
            times.append(time.perf_counter() - start)
        np.testing.assert_array_equal(loaded, array)
        return min(times)

    checked = round_trip()
    with monkeypatch.context() as patch:
        patch.setattr(snapshot_module.zlib, "crc32", lambda data, value=0: 0)
        free = round_trip()
    print(
        f"\n64 MiB round trip: {checked * 1e3:.0f} ms with CRC-32, {free * 1e3:.0f} ms without "
        f"({checked / free:.2f}x)"
    )
