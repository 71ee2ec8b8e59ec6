"""Averaging of task metrics by sample count."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping


def weighted_metrics(results: Iterable[tuple[Mapping[str, float], float]]) -> dict[str, float]:
    """Average each metric over the results that report it, weighted by their sample counts.

    A metric whose reporters all have zero samples gets the plain mean (no division by zero).
    Non-finite values are the caller's to refuse; counts must be >= 0.
    """
    sums: dict[str, list[float]] = {}
    plain: dict[str, list[float]] = {}
    weights: dict[str, list[float]] = {}
    for metrics, count in results:
        if isinstance(count, bool) or not math.isfinite(count) or count < 0:
            raise ValueError(f"sample count must be a finite number >= 0, got {count!r}")
        for name, value in metrics.items():
            sums.setdefault(name, []).append(float(value) * count)
            plain.setdefault(name, []).append(float(value))
            weights.setdefault(name, []).append(float(count))
    averaged: dict[str, float] = {}
    for name, values in sums.items():
        total = math.fsum(weights[name])
        if total > 0:
            averaged[name] = math.fsum(values) / total
        else:
            averaged[name] = math.fsum(plain[name]) / len(plain[name])
    return averaged
