"""openfl_cli.data.mnist: IDX files (plain and gzip), mnist.npz, torchvision's layout, the stand-in."""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import http.server
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from openfl_cli.data import mnist
from openfl_cli.data.mnist import digits_as_mnist, load_mnist, read_idx
from openfl_cli.errors import UsageError
from tests.runners.helpers import write_idx, write_tiny_mnist


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_read_idx_keeps_shape_and_values(tmp_path: Path, suffix: str) -> None:
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / f"x-idx3-ubyte{suffix}", array)
    read = read_idx(tmp_path / f"x-idx3-ubyte{suffix}")
    assert read.dtype == np.uint8
    np.testing.assert_array_equal(read, array)


def test_read_idx_reads_big_endian_int32(tmp_path: Path) -> None:
    values = np.array([1, -2, 70000], dtype=">i4")
    (tmp_path / "ints").write_bytes(bytes([0, 0, 0x0C, 1]) + (3).to_bytes(4, "big") + values.tobytes())
    np.testing.assert_array_equal(read_idx(tmp_path / "ints"), [1, -2, 70000])


@pytest.mark.parametrize(
    ("name", "body", "message"),
    [
        ("junk", b"\x01\x02\x03\x04rest", "not an IDX file"),
        ("short", bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big") + b"abc", "3 bytes of data for shape"),
        ("broken.gz", b"not gzip at all", "cannot read this MNIST file"),
    ],
)
def test_bad_idx_files_are_usage_errors_naming_the_file(
    tmp_path: Path, name: str, body: bytes, message: str
) -> None:
    (tmp_path / name).write_bytes(body)
    with pytest.raises(UsageError, match=message) as caught:
        read_idx(tmp_path / name)
    assert name in str(caught.value)


@pytest.mark.parametrize("gz", [True, False])
def test_load_mnist_reads_the_four_idx_files(tmp_path: Path, gz: bool) -> None:
    write_tiny_mnist(tmp_path, n_train=40, n_test=20, gz=gz)
    x_train, y_train, x_test, y_test = load_mnist(tmp_path)
    assert x_train.shape == (40, 28, 28) and x_test.shape == (20, 28, 28) and x_train.dtype == np.uint8
    assert y_train.dtype == y_test.dtype == np.int64
    np.testing.assert_array_equal(y_train, np.arange(40) % 10)


def test_load_mnist_finds_torchvisions_raw_folder(tmp_path: Path) -> None:
    write_tiny_mnist(tmp_path / "MNIST" / "raw", n_train=10, n_test=10)
    assert len(load_mnist(tmp_path)[0]) == 10


def test_load_mnist_reads_keras_npz(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 255, (12, 28, 28), dtype=np.uint8)
    np.savez(
        tmp_path / "mnist.npz",
        x_train=x_train,
        y_train=(np.arange(12) % 10).astype(np.uint8),
        x_test=np.zeros((4, 28, 28), np.uint8),
        y_test=np.arange(4, dtype=np.uint8),
    )
    got = load_mnist(tmp_path)
    np.testing.assert_array_equal(got[0], x_train)
    assert [len(a) for a in got] == [12, 12, 4, 4] and got[1].dtype == got[3].dtype == np.int64


def test_missing_files_offline_fall_back_to_digits_and_log_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FX_OFFLINE", "1")
    with caplog.at_level(logging.WARNING, logger="openfl_cli.data.mnist"):
        x_train, y_train, x_test, y_test = load_mnist(tmp_path / "none")
    assert "scikit-learn's 8x8 handwritten digits" in caplog.text and "none" in caplog.text
    assert not (tmp_path / "none").exists()  # offline: nothing downloaded, nothing created
    assert len(x_train) + len(x_test) == 1797 and len(x_test) == round(1797 * 0.2)
    assert x_train.shape[1:] == (28, 28) and x_train.dtype == np.uint8
    assert set(np.unique(y_train)) == set(range(10)) and y_test.dtype == np.int64


def test_digits_stand_in_is_drawn_like_mnist() -> None:
    x_train, _, x_test, _ = digits_as_mnist(valid_fraction=0.5, seed=1)
    images = np.concatenate([x_train, x_test])
    assert images[:, :4].max() == 0 and images[:, 24:].max() == 0  # an empty 4-pixel border
    assert images[:, :, :4].max() == 0 and images[:, :, 24:].max() == 0
    assert images.max() > 200  # strokes use the 0..255 range
    again = digits_as_mnist(valid_fraction=0.5, seed=1)
    np.testing.assert_array_equal(again[0], x_train)  # the split depends on the seed only


def test_gz_files_are_decompressed_not_sniffed(tmp_path: Path) -> None:
    # a plain IDX body under a .gz name is an error, not silently accepted
    array = np.zeros((2, 2), np.uint8)
    write_idx(tmp_path / "plain", array)
    (tmp_path / "plain.gz").write_bytes((tmp_path / "plain").read_bytes())
    with pytest.raises(UsageError):
        read_idx(tmp_path / "plain.gz")
    (tmp_path / "real.gz").write_bytes(gzip.compress((tmp_path / "plain").read_bytes()))
    assert read_idx(tmp_path / "real.gz").shape == (2, 2)


@contextlib.contextmanager
def file_server(folder: Path) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 serving `folder` (a local stand-in for an MNIST mirror); yields its URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def mirror_of_tiny_mnist(folder: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    """The four .gz files of a tiny MNIST in `folder`, announced as the real checksums; their bodies."""
    write_tiny_mnist(folder, n_train=30, n_test=10, gz=True)
    bodies = {name: (folder / f"{name}.gz").read_bytes() for name in mnist.FILES}
    checksums = {name: hashlib.md5(body, usedforsecurity=False).hexdigest() for name, body in bodies.items()}
    monkeypatch.setattr(mnist, "FILES", checksums)
    monkeypatch.delenv("FX_OFFLINE", raising=False)
    for variable in ("no_proxy", "NO_PROXY"):  # the local mirrors, not through a proxy CI may set
        monkeypatch.setenv(variable, "127.0.0.1,localhost")
    return bodies


def test_download_skips_a_mirror_with_wrong_files_and_takes_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    bodies = mirror_of_tiny_mnist(tmp_path / "good", monkeypatch)
    (tmp_path / "bad").mkdir()
    for name in bodies:
        (tmp_path / "bad" / f"{name}.gz").write_bytes(b"tampered")
    with file_server(tmp_path / "bad") as bad, file_server(tmp_path / "good") as good:
        monkeypatch.setattr(mnist, "MIRRORS", (bad, good))
        with caplog.at_level(logging.INFO, logger="openfl_cli.data.mnist"):
            x_train, y_train, x_test, _ = load_mnist(tmp_path / "data")
    assert x_train.shape == (30, 28, 28) and len(x_test) == 10
    np.testing.assert_array_equal(y_train, np.arange(30) % 10)
    assert "wrong checksum" in caplog.text and "downloaded to" in caplog.text
    assert {p.name: p.read_bytes() for p in (tmp_path / "data").iterdir()} == {
        f"{name}.gz": body for name, body in bodies.items()
    }


def test_download_failure_falls_back_to_digits_and_a_later_run_completes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bodies = mirror_of_tiny_mnist(tmp_path / "good", monkeypatch)
    (tmp_path / "half").mkdir()
    for name in list(bodies)[:2]:
        (tmp_path / "half" / f"{name}.gz").write_bytes(bodies[name])
    with file_server(tmp_path / "half") as half:
        monkeypatch.setattr(mnist, "MIRRORS", (half,))
        x_train, _, x_test, _ = load_mnist(tmp_path / "data")
    assert len(x_train) + len(x_test) == 1797  # the stand-in: two files could not be had
    first_two = sorted(f"{name}.gz" for name in list(bodies)[:2])
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == first_two
    with file_server(tmp_path / "good") as good:
        monkeypatch.setattr(mnist, "MIRRORS", (good,))
        assert len(load_mnist(tmp_path / "data")[0]) == 30


def test_an_offline_machine_falls_back_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A network that never answers (no route, a silent DNS) costs PROBE_SECONDS, not a download
    timeout per mirror."""
    import socket
    import time

    def silent(*args: Any, **kwargs: Any) -> socket.socket:
        time.sleep(5)
        raise OSError("timed out")

    monkeypatch.delenv("FX_OFFLINE", raising=False)
    monkeypatch.setattr(socket, "create_connection", silent)
    monkeypatch.setattr(mnist, "MIRRORS", ("https://mirror-one.invalid/", "https://mirror-two.invalid/"))
    monkeypatch.setattr(mnist, "_online", {})
    stand_in = (np.zeros((3, 28, 28), np.uint8), np.zeros(3, np.int64)) * 2
    monkeypatch.setattr(mnist, "digits_as_mnist", lambda: stand_in)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="openfl_cli.data.mnist"):
        assert load_mnist(tmp_path / "data") is stand_in
    assert time.monotonic() - started < mnist.PROBE_SECONDS + 1.0
    assert "no MNIST mirror answered" in caplog.text
    assert not (tmp_path / "data").exists()  # offline, nothing is written
