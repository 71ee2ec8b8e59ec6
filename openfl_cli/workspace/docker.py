"""The Docker engine, if one runs here: ask it, and run `docker` commands whose output the user sees."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence

from openfl_cli.errors import FxError

PROBE_SECONDS = 15


def engine_running() -> bool:
    """True when a `docker` client is on PATH and its engine answers (`docker info`)."""
    if shutil.which("docker") is None:
        return False
    try:
        probe = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=PROBE_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0 and bool(probe.stdout.strip())


def run_docker(command: Sequence[str]) -> None:
    """Run one `docker` command, its output going to the terminal; one-line FxError when it fails."""
    from openfl_cli.workspace.image import shell_line

    try:
        done = subprocess.run(list(command), check=False)
    except OSError as error:
        raise FxError(f"`{shell_line(command)}` could not start ({error})") from None
    if done.returncode != 0:
        raise FxError(f"`{shell_line(command)}` failed (exit {done.returncode}); its output is above")
