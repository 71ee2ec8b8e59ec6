"""The malloc tuning of aggregator and collaborator processes, checked in fresh interpreters (it changes
the whole process) by what it is for: page faults avoided, memory given back."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc only"
)

# One "round": 25 tensors of 4 MB filled, then freed; prints what the second round cost.
_ROUNDS = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    from openfl_cli.utils import allocator
    tuned = getattr(allocator, sys.argv[1])() if sys.argv[1] != "none" else None

    def rss_kib():
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))

    def one_round():
        arrays = [np.empty(1_000_000, np.float32) for _ in range(25)]
        for array in arrays:
            array.fill(1.0)
        return arrays

    one_round()  # the first round: its freed memory is what the second one may reuse
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    arrays = one_round()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    held = rss_kib()
    del arrays
    print(tuned, faults, held - rss_kib())
    """
)


def _run(tuning: str, **env: str) -> tuple[str, int, int]:
    """(what the tuning returned, page faults of the second round, KiB given back after it)."""
    out = subprocess.run(
        [sys.executable, "-c", _ROUNDS, tuning],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    ).stdout.split()
    return out[0], int(out[1]), int(out[2])


PAGES_PER_ROUND = 100_000_000 // 4096


def test_collaborator_reuses_freed_buffers_without_page_faults() -> None:
    tuned, faults, _ = _run("tune_for_collaborator")
    assert tuned == "True"
    assert faults < PAGES_PER_ROUND // 10
    _, untuned_faults, _ = _run("none")
    assert untuned_faults > PAGES_PER_ROUND // 2  # what the tuning avoids


def test_aggregator_gives_freed_tensors_back() -> None:
    tuned, _, given_back_kib = _run("tune_for_aggregator")
    assert tuned == "True"
    assert given_back_kib > 90_000  # the 100 MB of the round


def test_user_settings_win() -> None:
    tuned, faults, _ = _run("tune_for_collaborator", MALLOC_ARENA_MAX="2")
    assert tuned == "False"
    assert faults > PAGES_PER_ROUND // 2
