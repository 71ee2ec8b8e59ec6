"""Shared test helpers: run the real `fx` in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
FX = [sys.executable, "-m", "openfl_cli"]


def fx_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("FQDN", None)
    env["PYTHONUNBUFFERED"] = "1"
    # the templates must never try the network in tests: they fall back to bundled data
    env["FX_OFFLINE"] = "1"
    # `fx workspace import` installs the archive's requirements: from what is installed, never an index
    env["PIP_NO_INDEX"] = "1"
    if extra:
        env.update(extra)
    return env


def run_fx(
    args: Sequence[str],
    cwd: str | Path,
    *,
    check: bool = True,
    env: dict[str, str] | None = None,
    input: str | None = None,
    timeout: float = 240,
) -> subprocess.CompletedProcess[str]:
    """Run `fx ARGS` in `cwd`; with check, fail the test showing its output when it exits non-zero."""
    proc = subprocess.run(
        [*FX, *args],
        cwd=cwd,
        env=fx_env(env),
        input=input if input is not None else "",
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        pytest.fail(
            f"fx {' '.join(args)} exited {proc.returncode}\n"
            f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        )
    return proc


def start_fx(
    args: Sequence[str], cwd: str | Path, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen:
    """Start `fx ARGS` in the background, its output going to `log`."""
    handle = open(log, "wb")  # noqa: SIM115 - closed with the process by the caller's fixture
    return subprocess.Popen(
        [*FX, *args],
        cwd=cwd,
        env=fx_env(env),
        stdout=handle,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def fx():
    """The `run_fx` function, as a fixture for tests that prefer it."""
    return run_fx
