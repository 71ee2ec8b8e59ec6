"""Running a certified federation with real `fx` processes, for the e2e tests and the benchmark.

A certified federation (tests/e2e/pki_flow.py) is made once and copied per test; every copy gets its own
port and the same plan edits in every workspace (so the plan hashes agree).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import start_fx
from tests.e2e.pki_flow import FederationDirs

DEFAULT_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def deep_update(target: dict[str, Any], changes: Mapping[str, Any]) -> None:
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            deep_update(target[key], value)
        else:
            target[key] = value


class Federation:
    """A copy of a certified federation under `root`, and the `fx` processes it runs."""

    def __init__(
        self,
        source: FederationDirs,
        root: Path,
        plan_changes: Mapping[str, Any] | None = None,
        members: list[str] | None = None,
    ) -> None:
        """`members`: the collaborators in the aggregator's cols.yaml (default: all certified ones)."""
        source_root = source.aggregator.parent.parent
        shutil.copytree(source_root, root, symlinks=True)
        self.root = root
        self.aggregator = root / source.aggregator.relative_to(source_root)
        self.all_collaborators = {
            name: root / path.relative_to(source_root) for name, path in source.collaborators.items()
        }
        names = members if members is not None else list(self.all_collaborators)
        self.collaborators = {name: self.all_collaborators[name] for name in names}
        cols = self.aggregator / "plan" / "cols.yaml"
        cols.write_text(yaml.safe_dump({"collaborators": names}))
        self.port = free_port()
        self.processes: list[subprocess.Popen] = []
        changes: dict[str, Any] = {"network": {"settings": {"agg_port": self.port}}}
        deep_update(changes, plan_changes or {})
        self.edit_plans(changes)

    def workspaces(self) -> list[Path]:
        return [self.aggregator, *self.all_collaborators.values()]

    def edit_plans(self, changes: Mapping[str, Any], only: list[Path] | None = None) -> None:
        for workspace in only or self.workspaces():
            path = workspace / "plan" / "plan.yaml"
            document = yaml.safe_load(path.read_text())
            deep_update(document, changes)
            path.write_text(yaml.safe_dump(document, sort_keys=False))

    def start_aggregator(self, log: str = "aggregator.log") -> subprocess.Popen:
        return self._start(["aggregator", "start"], self.aggregator, log)

    def start_collaborator(self, name: str, log: str | None = None) -> subprocess.Popen:
        workspace = self.all_collaborators[name]
        return self._start(["collaborator", "start", "-n", name], workspace, log or f"{name}.log")

    def _start(self, args: list[str], cwd: Path, log: str) -> subprocess.Popen:
        process = start_fx(args, cwd, self.root / log)
        self.processes.append(process)
        return process

    def log(self, name: str) -> str:
        path = self.root / name
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_for(self, name: str, pattern: str, timeout: float = DEFAULT_TIMEOUT) -> re.Match[str]:
        """Wait until log `name` matches `pattern` (a regex)."""
        deadline = time.monotonic() + timeout
        while True:
            found = re.search(pattern, self.log(name), re.MULTILINE)
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{pattern!r} never appeared in {name}:\n{self.log(name)}\n{self.all_logs()}"
                )
            time.sleep(0.02)

    def wait(self, process: subprocess.Popen, timeout: float = DEFAULT_TIMEOUT) -> int:
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{process.args} did not finish in {timeout} s\n{self.all_logs()}") from None

    def all_logs(self) -> str:
        return "\n".join(
            f"--- {log.name}\n{log.read_text(errors='replace')}" for log in sorted(self.root.glob("*.log"))
        )

    def kill(self, process: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
        if process.poll() is None:
            os.kill(process.pid, sig)
            if sig in (signal.SIGKILL, signal.SIGTERM):
                process.wait(10)

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGCONT)
                process.kill()
                process.wait(10)
            if process.stdout is not None:
                process.stdout.close()


def run_until_done(federation: Federation, timeout: float = DEFAULT_TIMEOUT) -> dict[str, int]:
    """Start everybody, wait for every exit code."""
    aggregator = federation.start_aggregator()
    workers = {name: federation.start_collaborator(name) for name in federation.collaborators}
    codes = {"aggregator": federation.wait(aggregator, timeout)}
    codes.update({name: federation.wait(process, timeout) for name, process in workers.items()})
    return codes
