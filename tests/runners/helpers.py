"""Test helpers that need no framework: importing a template's `src` package, writing tiny data sets."""

from __future__ import annotations

import gzip
import importlib
import struct
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import numpy as np

TEMPLATES = Path(__file__).resolve().parents[2] / "workspace_templates"


def _forget_src() -> None:
    for name in [name for name in sys.modules if name == "src" or name.startswith("src.")]:
        del sys.modules[name]


@contextmanager
def template_src(template: str) -> Iterator[ModuleType]:
    """Import `workspace_templates/<template>/src` as `src`, as fx does in a workspace; undo afterwards."""
    folder = str(TEMPLATES / template)
    _forget_src()
    sys.path.insert(0, folder)
    writes_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # keep templates clean
    try:
        yield importlib.import_module("src")
    finally:
        sys.path.remove(folder)
        sys.dont_write_bytecode = writes_bytecode
        _forget_src()


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write an unsigned-byte IDX file (gzip-compressed when the name ends with .gz)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", n) for n in array.shape)
    body = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.write_bytes(gzip.compress(body) if path.suffix == ".gz" else body)


def write_tiny_mnist(folder: Path, n_train: int = 40, n_test: int = 20, gz: bool = True) -> None:
    """Four MNIST IDX files of random strokes whose labels are learnable (a bright row per class)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        images = rng.integers(0, 40, (n, 28, 28), dtype=np.uint8)
        images[np.arange(n), 2 + 2 * labels, :] = 255
        write_idx(folder / f"{split}-images-idx3-ubyte{suffix}", images)
        write_idx(folder / f"{split}-labels-idx1-ubyte{suffix}", labels)


class BlobLoader:
    """Mixin-free NumPy data: three Gaussian blobs in 4 dimensions, fixed batches (runs repeat exactly)."""

    @staticmethod
    def arrays(seed: int, n: int = 96) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        y = np.arange(n) % 3
        x = (rng.normal(size=(n, 4)) * 0.5 + y[:, None]).astype(np.float32)
        return x, y.astype(np.int64)


# environment that keeps TensorFlow, JAX and BLAS to one thread (the test machine is shared)
ONE_THREAD = {
    "OMP_NUM_THREADS": "1",
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
}


KATHER_CLASSES = (
    "01_TUMOR",
    "02_STROMA",
    "03_COMPLEX",
    "04_LYMPHO",
    "05_DEBRIS",
    "06_MUCOSA",
    "07_ADIPOSE",
    "08_EMPTY",
)


def write_tiny_histology(folder: Path, per_class: int = 3, size: int = 150) -> Path:
    """Kather 2016's layout: a folder per class of RGB .tif tiles; each class has its own hue."""
    from PIL import Image

    root = folder / "Kather_texture_2016_image_tiles_5000"
    rng = np.random.default_rng(0)
    for label, name in enumerate(KATHER_CLASSES):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            tile = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
            tile[..., label % 3] += np.uint8(60 + 20 * label)
            Image.fromarray(tile).save(root / name / f"{name}_{i:03d}.tif")
    return root


def write_tiny_brats(folder: Path, cases: int = 3, side: int = 32, depth: int = 6) -> list[Path]:
    """BraTS's layout: a folder per case of NIfTI volumes (flair, t1, seg); a bright blob is the tumour."""
    import nibabel

    rng = np.random.default_rng(0)
    written = []
    for number in range(1, cases + 1):
        case = folder / f"BraTS20_Training_{number:03d}"
        case.mkdir(parents=True)
        brain = rng.normal(100, 10, (side, side, depth)).astype(np.float32)
        brain[:2], brain[-2:] = 0, 0
        seg = np.zeros((side, side, depth), np.uint8)
        c = 8 + 4 * number
        seg[c - 4 : c + 4, c - 4 : c + 4, 1:-1] = 2
        brain[seg > 0] += 80
        for modality, volume in (("flair", brain), ("t1", brain * 0.5), ("seg", seg)):
            image = nibabel.Nifti1Image(volume, np.eye(4))
            nibabel.save(image, case / f"{case.name}_{modality}.nii.gz")
        written.append(case)
    return written
