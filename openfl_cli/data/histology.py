"""Kather et al. 2016 colorectal histology tiles: 5000 RGB tiles of 150x150 pixels in 8 classes.

On disk (as published on Zenodo, record 53169): `Kather_texture_2016_image_tiles_5000/` holding one
folder per class (`01_TUMOR`, `02_STROMA`, ..., `08_EMPTY`) of `.tif` tiles. The folder given may be
that one or its parent. When absent and the machine is online (FX_OFFLINE unset) the archive is
downloaded into the folder and unpacked safely.

Framework-agnostic: NumPy and the standard library, with Pillow imported only when tiles are read.
"""

from __future__ import annotations

import logging
import os
import urllib.request
from pathlib import Path

import numpy as np

from openfl_cli.data.sharding import shuffled_shard, split_valid

log = logging.getLogger(__name__)

ARCHIVE = "Kather_texture_2016_image_tiles_5000"
URL = f"https://zenodo.org/record/53169/files/{ARCHIVE}.zip"
SUFFIXES = (".tif", ".tiff")
Split = tuple[np.ndarray, np.ndarray]  # images (N, H, W, 3) uint8, labels (N,) int64


def find_tiles(folder: str | Path) -> tuple[list[str], list[tuple[Path, int]]]:
    """Class names (sorted folder names) and every (tile path, label), in a stable order.

    `folder` may be the unpacked archive or its parent; a missing folder gives no classes and no tiles.
    """
    root = Path(folder)
    if (root / ARCHIVE).is_dir():
        root = root / ARCHIVE
    classes = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    tiles = [
        (path, label)
        for label, name in enumerate(classes)
        for path in sorted((root / name).iterdir())
        if path.suffix.lower() in SUFFIXES
    ]
    return classes, tiles


def load_histology(
    folder: str | Path,
    shard: int = 0,
    shard_count: int = 1,
    valid_fraction: float = 0.2,
    image_size: int = 150,
    seed: int = 0,
) -> tuple[list[str], Split, Split]:
    """Class names, then (train, valid) of shard `shard` (0-based) of `shard_count`.

    Tiles are shuffled once by `seed` and dealt round-robin, so shards are disjoint and the same on every
    node; each shard keeps its last `valid_fraction` for validation. Images come back as uint8
    (N, image_size, image_size, 3), labels as int64 (N,). No tiles (after a download attempt when online)
    is a UsageError naming the folder.
    """
    from openfl_cli.errors import UsageError

    classes, tiles = find_tiles(folder)
    if not tiles and os.environ.get("FX_OFFLINE") != "1":
        download(Path(folder))
        classes, tiles = find_tiles(folder)
    if not tiles:
        raise UsageError(
            f"no histology tiles in {folder}: put the class folders of {ARCHIVE} there (from {URL})"
        )
    train_rows, valid_rows = split_valid(shuffled_shard(len(tiles), shard, shard_count, seed), valid_fraction)
    log.info(
        "histology: %d tiles in %d classes, shard %d of %d", len(tiles), len(classes), shard + 1, shard_count
    )
    train = _read([tiles[i] for i in train_rows], image_size)
    valid = _read([tiles[i] for i in valid_rows], image_size)
    return classes, train, valid


def _read(tiles: list[tuple[Path, int]], image_size: int) -> Split:
    """Decode `tiles` to RGB, resized (bilinear) to `image_size` square when they are not already."""
    from PIL import Image

    from openfl_cli.errors import UsageError

    images = np.zeros((len(tiles), image_size, image_size, 3), np.uint8)
    for i, (path, _) in enumerate(tiles):
        try:
            with Image.open(path) as tile:
                rgb = tile.convert("RGB")
        except OSError as error:  # PIL's UnidentifiedImageError is one
            raise UsageError(f"{path}: cannot read this histology tile: {error}") from None
        if rgb.size != (image_size, image_size):
            rgb = rgb.resize((image_size, image_size), Image.Resampling.BILINEAR)
        images[i] = np.asarray(rgb)
    return images, np.array([label for _, label in tiles], np.int64)


def download(folder: Path) -> None:
    """Fetch and unpack the Zenodo archive (about 250 MB) into `folder`."""
    from openfl_cli.utils.archive import safe_extract

    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / f"{ARCHIVE}.zip"
    log.info("histology: downloading %s", URL)
    try:
        partial = archive.with_suffix(".part")
        with urllib.request.urlopen(URL, timeout=60) as response, open(partial, "wb") as out:
            while chunk := response.read(1 << 20):
                out.write(chunk)
        partial.replace(archive)
        safe_extract(archive, folder)
    except OSError as error:
        log.warning("histology: download failed: %s", error)
