"""Run the participants of a local federation as child processes and relay their output."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from openfl_cli.errors import FxError

FX = (sys.executable, "-m", "openfl_cli")


def fx_step(args: Sequence[str], cwd: Path, input_text: str = "") -> str:
    """Run one `fx` command to completion; raise with its own error line when it fails."""
    proc = subprocess.run(
        [*FX, *args], cwd=cwd, input=input_text, capture_output=True, text=True, env=_child_env()
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()[-1]
        raise FxError(f"`fx {' '.join(args)}` in {cwd} failed (exit {proc.returncode}): {last}")
    return proc.stdout


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class Participant:
    label: str
    process: subprocess.Popen[bytes]
    log_path: Path
    relay: threading.Thread | None = None


@dataclass
class ProcessGroup:
    """Child processes that all stop together: on exit, on error and on Ctrl-C."""

    echo: IO[str] = field(default_factory=lambda: sys.stdout)
    participants: list[Participant] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, label: str, args: Sequence[str], cwd: Path, log_path: Path) -> Participant:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        process = subprocess.Popen(
            [*FX, *args],
            cwd=cwd,
            env=_child_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us only; we stop the children ourselves
        )
        participant = Participant(label, process, log_path)
        participant.relay = threading.Thread(target=self._relay, args=(participant,), daemon=True)
        participant.relay.start()
        self.participants.append(participant)
        return participant

    def _relay(self, participant: Participant) -> None:
        width = max(12, len(participant.label))
        assert participant.process.stdout is not None
        with open(participant.log_path, "wb") as log:
            for raw in iter(participant.process.stdout.readline, b""):
                log.write(raw)
                log.flush()
                line = raw.decode("utf-8", "replace").rstrip()
                with self._lock:
                    print(f"{participant.label:<{width}} | {line}", file=self.echo, flush=True)

    def check_running(self) -> None:
        """Fail early when a participant has already exited with an error."""
        for participant in self.participants:
            code = participant.process.poll()
            if code not in (None, 0):
                raise FxError(f"{participant.label} exited with code {code}; see {participant.log_path}")

    def wait_all(self, timeout: float) -> None:
        """Wait for every process; fail (after stopping the rest) if one exits non-zero or time runs out."""
        deadline = time.monotonic() + timeout
        pending = list(self.participants)
        while pending:
            for participant in list(pending):
                code = participant.process.poll()
                if code is None:
                    continue
                pending.remove(participant)
                if participant.relay:
                    participant.relay.join(timeout=5)
                if code != 0:
                    raise FxError(f"{participant.label} exited with code {code}; see {participant.log_path}")
            if time.monotonic() > deadline:
                raise FxError(f"the federation did not finish within {timeout:.0f} s")
            time.sleep(0.1)

    def stop_all(self, grace: float = 5.0) -> None:
        for participant in self.participants:
            if participant.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(participant.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for participant in self.participants:
            remaining = max(0.0, deadline - time.monotonic())
            try:
                participant.process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(participant.process.pid, signal.SIGKILL)
                participant.process.wait()
