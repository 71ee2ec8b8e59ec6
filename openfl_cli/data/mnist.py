"""MNIST as NumPy arrays: from its usual files on disk, by download when online, else a stand-in.

Framework-agnostic (NumPy and the standard library; scikit-learn only for the offline stand-in), shared
by the bundled MNIST templates whatever their framework.

Files accepted in the data folder (or its `MNIST/raw/` subfolder, torchvision's layout): the four IDX
files (`train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`, `t10k-images-idx3-ubyte[.gz]`,
`t10k-labels-idx1-ubyte[.gz]`) or Keras's `mnist.npz`. When they are absent and the machine is online
(environment FX_OFFLINE unset) the IDX files are downloaded into the folder and checked. Otherwise the
loader falls back to scikit-learn's handwritten digits (8x8) resized to 28x28 and says so in the log.
Whether the machine is online is asked once per process, by connecting to the mirrors (or the HTTPS
proxy) for at most PROBE_SECONDS: an offline machine knows it at once, not after a download timeout.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import socket
import threading
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import numpy as np

from openfl_cli.data.shared import shared_dataset

if TYPE_CHECKING:
    from numpy.typing import DTypeLike

log = logging.getLogger(__name__)

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # x_train, y_train, x_test, y_test

MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
FILES = {  # name -> MD5 of the .gz file
    "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
}
PROBE_SECONDS = 0.5  # DNS and a TCP handshake to a mirror take well under this on a working network
DOWNLOAD_TIMEOUT = 30.0
_online: dict[tuple[tuple[str, int], ...], bool] = {}  # the probe's answer per set of mirrors
IDX_DTYPES: dict[int, DTypeLike] = {
    0x08: np.uint8,
    0x09: np.int8,
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}


def load_mnist(folder: str | Path) -> Arrays:
    """MNIST from `folder`: (x_train, y_train, x_test, y_test), images (N, 28, 28) uint8, labels (N,) int64.

    Looks in `folder` and then `folder/MNIST/raw`; downloads into `folder` when online; otherwise (or when
    the download fails) logs a warning and returns `digits_as_mnist()`. Offline, nothing is written.
    Within a simulation (`data.shared.sharing_datasets`) each folder is read once for all loaders.
    """
    folder = Path(folder)
    return shared_dataset(("mnist", str(folder.resolve())), lambda: _load_mnist(folder))


def _load_mnist(folder: Path) -> Arrays:
    for candidate in (folder, folder / "MNIST" / "raw"):
        found = _read_folder(candidate)
        if found is not None:
            log.info("MNIST: read from %s", candidate)
            return found
    if os.environ.get("FX_OFFLINE") == "1":
        why = "FX_OFFLINE=1"
    elif not mirrors_reachable():
        why = f"no MNIST mirror answered within {PROBE_SECONDS} s"
    elif _download(folder):
        found = _read_folder(folder)
        if found is not None:
            return found
        why = "the download could not be read"
    else:
        why = "the download failed"
    log.warning(
        "MNIST: not found in %s and not downloaded (%s); using scikit-learn's 8x8 handwritten digits "
        "resized to 28x28 instead",
        folder,
        why,
    )
    return digits_as_mnist()


def mirrors_reachable(timeout: float = PROBE_SECONDS) -> bool:
    """Whether a mirror (or the HTTPS proxy urllib would use for it) accepts a TCP connection within
    `timeout` seconds, name lookup included. Asked once per process and set of mirrors; the probes
    run on daemon threads, since a name lookup cannot be given a timeout of its own."""
    targets = tuple(_probe_target(mirror) for mirror in MIRRORS)
    if targets not in _online:
        _online[targets] = _probe(list(targets), timeout)
    return _online[targets]


def _probe_target(url: str) -> tuple[str, int]:
    """Where urllib connects to fetch `url`: its host, or the proxy it goes through."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        proxied = urlsplit(proxy if "//" in proxy else f"http://{proxy}")
        if proxied.hostname:
            return proxied.hostname, proxied.port or (443 if proxied.scheme == "https" else 80)
    return host, parts.port or (443 if parts.scheme == "https" else 80)


def _probe(targets: list[tuple[str, int]], timeout: float) -> bool:
    answered = threading.Event()
    lock = threading.Lock()
    outcomes: list[bool] = []

    def connect(target: tuple[str, int]) -> None:
        try:
            socket.create_connection(target, timeout=timeout).close()
            reached = True
        except OSError:
            reached = False
        with lock:
            outcomes.append(reached)
            if reached or len(outcomes) == len(targets):
                answered.set()

    for target in targets:
        threading.Thread(target=connect, args=(target,), name="fx-mnist-probe", daemon=True).start()
    answered.wait(timeout)
    with lock:
        return any(outcomes)


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (gzip-compressed when its name ends with .gz) as an array of its own shape.

    A file that is not IDX (bad header, truncated body, broken gzip) is a UsageError naming it.
    """
    from openfl_cli.errors import UsageError

    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as error:
        raise UsageError(f"{path}: cannot read this MNIST file: {error}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise UsageError(f"{path}: not an IDX file")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    itemsize = np.dtype(IDX_DTYPES[raw[2]]).itemsize
    body = len(raw) - 4 - 4 * ndim
    if body < 0 or body != itemsize * int(np.prod(shape)):
        raise UsageError(f"{path}: {max(body, 0)} bytes of data for shape {shape}")
    return np.frombuffer(raw, dtype=IDX_DTYPES[raw[2]], offset=4 + 4 * ndim).reshape(shape)


def _read_folder(folder: Path) -> Arrays | None:
    """The arrays from `mnist.npz` or the four IDX files in `folder`; None when they are not all there."""
    npz = folder / "mnist.npz"
    if npz.is_file():
        with np.load(npz, allow_pickle=False) as saved:
            x_train, y_train, x_test, y_test = (saved[k] for k in ("x_train", "y_train", "x_test", "y_test"))
            return x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64)
    paths = []
    for name in FILES:
        path = next((p for p in (folder / name, folder / f"{name}.gz") if p.is_file()), None)
        if path is None:
            return None
        paths.append(path)
    x_train, y_train, x_test, y_test = (read_idx(path) for path in paths)
    return x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64)


def _download(folder: Path) -> bool:
    """Fetch the four .gz files that are missing, checking each MD5; False when one cannot be had."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, md5 in FILES.items():
        target = folder / f"{name}.gz"
        if target.is_file():
            continue
        for mirror in MIRRORS:
            try:
                with urllib.request.urlopen(f"{mirror}{name}.gz", timeout=DOWNLOAD_TIMEOUT) as response:
                    body = response.read()
            except OSError as error:
                log.info("MNIST: %s%s.gz: %s", mirror, name, error)
                continue
            if hashlib.md5(body, usedforsecurity=False).hexdigest() == md5:
                partial = target.with_suffix(".part")
                partial.write_bytes(body)
                partial.replace(target)
                break
            log.warning("MNIST: %s%s.gz has a wrong checksum; ignored", mirror, name)
        else:
            return False
    log.info("MNIST: downloaded to %s", folder)
    return True


def digits_as_mnist(valid_fraction: float = 0.2, seed: int = 0) -> Arrays:
    """scikit-learn's 1797 digits drawn like MNIST: 20x20 strokes centred in 28x28, values 0..255.

    Returns (x_train, y_train, x_test, y_test) as `load_mnist` does; `valid_fraction` of the images,
    chosen by `seed`, form the test split.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    resize = _bilinear_matrix(8, 20)
    images = np.einsum("oi,nij,pj->nop", resize, digits.images / 16.0, resize)
    canvas = np.zeros((len(images), 28, 28), np.uint8)
    canvas[:, 4:24, 4:24] = np.clip(images * 255.0, 0, 255).round().astype(np.uint8)
    labels = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(labels))
    n_test = round(len(order) * valid_fraction)
    train, test = order[n_test:], order[:n_test]
    return canvas[train], labels[train], canvas[test], labels[test]


def _bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of bilinear resampling with pixel centres aligned."""
    position = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, n_in - 1)
    weight = position - low
    matrix = np.zeros((n_out, n_in))
    np.add.at(matrix, (np.arange(n_out), low), 1.0 - weight)
    np.add.at(matrix, (np.arange(n_out), high), weight)
    return matrix
