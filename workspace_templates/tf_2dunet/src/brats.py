"""BraTS volumes as 2D axial slices for tumour segmentation.

On disk (as BraTS distributes it): one folder per case holding NIfTI volumes named
`<case>_<modality>.nii.gz` (or `.nii`), modalities `flair`, `t1`, `t1ce`, `t2`, and the labels
`<case>_seg.nii.gz` (0 background, 1/2/4 tumour sub-regions). Cases may sit at any depth under the data
folder (for example `MICCAI_BraTS2020_TrainingData/BraTS20_Training_001/`). The task is the whole
tumour: every non-zero label.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from openfl_cli.data.sharding import shuffled_shard
from openfl_cli.errors import UsageError

log = logging.getLogger(__name__)
Split = tuple[np.ndarray, np.ndarray]  # images (N, S, S, channels) float32, masks (N, S, S, 1) float32


def find_cases(folder: str | Path) -> list[Path]:
    """Case folders (those holding a `*_seg.nii[.gz]`), sorted."""
    root = Path(folder)
    segs = [*root.rglob("*_seg.nii.gz"), *root.rglob("*_seg.nii")] if root.is_dir() else []
    return sorted({seg.parent for seg in segs})


def load_brats(
    folder: str | Path,
    shard: int = 0,
    shard_count: int = 1,
    modalities: Sequence[str] = ("flair",),
    image_size: int = 128,
    valid_fraction: float = 0.2,
    seed: int = 0,
) -> tuple[Split, Split]:
    """(train, valid) slices of shard `shard` of `shard_count`; cases, not slices, are dealt to shards."""
    cases = find_cases(folder)
    if not cases:
        raise UsageError(f"no BraTS cases (folders with <case>_seg.nii.gz) under {folder}")
    mine = [cases[i] for i in shuffled_shard(len(cases), shard, shard_count, seed)]
    if not mine:
        raise UsageError(f"{folder}: {len(cases)} BraTS cases cannot fill {shard_count} shards")
    n_valid = min(max(1, round(len(mine) * valid_fraction)), len(mine) - 1) if len(mine) > 1 else 0
    log.info("BraTS: %d cases, %d in this shard (%d for validation)", len(cases), len(mine), n_valid)
    train = _slices(mine[: len(mine) - n_valid], modalities, image_size)
    valid = _slices(mine[len(mine) - n_valid :], modalities, image_size) if n_valid else train
    return train, valid


def _slices(cases: list[Path], modalities: Sequence[str], image_size: int) -> Split:
    images, masks = [], []
    for case in cases:
        channels = [_normalized(_volume(case, modality)) for modality in modalities]
        volume = np.stack(channels, axis=-1)  # (H, W, D, C)
        labels = (_volume(case, "seg") > 0).astype(np.float32)[..., None]
        images.append(_crop(np.moveaxis(volume, 2, 0), image_size))  # axial slices first
        masks.append(_crop(np.moveaxis(labels, 2, 0), image_size))
    return np.concatenate(images), np.concatenate(masks)


def _volume(case: Path, modality: str) -> np.ndarray:
    import nibabel

    for suffix in (".nii.gz", ".nii"):
        found = sorted(case.glob(f"*_{modality}{suffix}"))
        if found:
            return np.asarray(nibabel.load(found[0]).dataobj, dtype=np.float32)
    raise UsageError(f"BraTS case {case}: no *_{modality}.nii.gz")


def _normalized(volume: np.ndarray) -> np.ndarray:
    """Zero mean and unit variance over the brain (non-zero voxels); background stays 0."""
    brain = volume[volume > 0]
    if brain.size == 0:
        return volume
    return np.where(volume > 0, (volume - brain.mean()) / (brain.std() + 1e-6), 0.0).astype(np.float32)


def _crop(slices: np.ndarray, size: int) -> np.ndarray:
    """Centre crop (or zero pad) slices (N, H, W, C) to (N, size, size, C)."""
    out = np.zeros((slices.shape[0], size, size, slices.shape[3]), np.float32)
    h, w = slices.shape[1:3]
    top, left = max((h - size) // 2, 0), max((w - size) // 2, 0)
    part = slices[:, top : top + size, left : left + size]
    at_h, at_w = (size - part.shape[1]) // 2, (size - part.shape[2]) // 2
    out[:, at_h : at_h + part.shape[1], at_w : at_w + part.shape[2]] = part
    return out
