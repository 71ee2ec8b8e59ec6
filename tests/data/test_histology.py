"""openfl_cli.data.histology: Kather 2016's folder layout, shards, sizes, and what a bad folder gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from openfl_cli.data.histology import ARCHIVE, find_tiles, load_histology
from openfl_cli.errors import UsageError
from tests.runners.helpers import KATHER_CLASSES, write_tiny_histology

pytest.importorskip("PIL")


def test_find_tiles_accepts_the_archive_folder_or_its_parent(tmp_path: Path) -> None:
    root = write_tiny_histology(tmp_path, per_class=2, size=8)
    (root / "01_TUMOR" / "notes.txt").write_text("not a tile")
    classes, tiles = find_tiles(tmp_path)
    assert classes == list(KATHER_CLASSES)
    assert len(tiles) == 16 and all(path.suffix == ".tif" for path, _ in tiles)
    assert [label for _, label in tiles] == [i // 2 for i in range(16)]
    assert find_tiles(root) == (classes, tiles)
    assert find_tiles(tmp_path / "missing") == ([], [])


def test_shards_are_disjoint_and_cover_every_tile(tmp_path: Path) -> None:
    write_tiny_histology(tmp_path, per_class=5, size=16)
    parts = [load_histology(tmp_path, i, 3, valid_fraction=0.25, image_size=16) for i in range(3)]
    seen = []
    for classes, (x, y), (vx, _vy) in parts:
        assert classes[0] == "01_TUMOR" and len(classes) == 8
        assert x.dtype == vx.dtype == np.uint8 and y.dtype == np.int64
        assert x.shape[1:] == (16, 16, 3) and len(vx) == round((len(x) + len(vx)) * 0.25)
        seen += [tile.tobytes() for tile in np.concatenate([x, vx])]
    assert len(seen) == 40 and len(set(seen)) == 40  # each tile (all differ) lands in one shard


def test_tiles_are_resized_and_the_seed_fixes_the_deal(tmp_path: Path) -> None:
    write_tiny_histology(tmp_path, per_class=2, size=20)
    _, (x, y), _ = load_histology(tmp_path / ARCHIVE, 0, 2, valid_fraction=0.0, image_size=10, seed=3)
    _, (x2, y2), _ = load_histology(tmp_path, 0, 2, valid_fraction=0.0, image_size=10, seed=3)
    assert x.shape == (8, 10, 10, 3)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)


def test_no_tiles_offline_is_a_usage_error_naming_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FX_OFFLINE", "1")
    with pytest.raises(UsageError, match="no histology tiles") as caught:
        load_histology(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(caught.value)
    assert not (tmp_path / "nowhere").exists()


def test_an_unreadable_tile_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    root = write_tiny_histology(tmp_path, per_class=1, size=8)
    bad = root / "02_STROMA" / "broken.tif"
    bad.write_bytes(b"not an image")
    with pytest.raises(UsageError, match=r"broken\.tif"):
        load_histology(tmp_path, valid_fraction=0.0, image_size=8)
