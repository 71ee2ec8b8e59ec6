"""`utils.lock.ProcessLock`: one holder at a time across processes, released by the OS when it dies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from openfl_cli.utils.lock import LockHeld, ProcessLock, read_owner

HOLDER = (
    "import sys, time\n"
    "from openfl_cli.utils.lock import ProcessLock\n"
    "lock = ProcessLock(sys.argv[1])\n"
    "lock.acquire()\n"
    "print('HELD', flush=True)\n"
    "time.sleep(120)\n"
)


def _start_holder(path: Path) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True, cwd=Path.cwd()
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "HELD"
    return holder


def test_a_second_holder_in_another_process_is_refused_until_the_first_is_killed(tmp_path: Path) -> None:
    path = tmp_path / "local_state" / "aggregator.lock"
    holder = _start_holder(path)
    try:
        with pytest.raises(LockHeld) as refused:
            ProcessLock(path).acquire()
        assert refused.value.owner.pid == holder.pid
        assert f"pid {holder.pid}, started " in str(refused.value)
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
        lock = ProcessLock(path)
        lock.acquire()  # the OS released the dead holder's lock
        assert lock.held
        assert read_owner(path).pid == os.getpid()
        lock.release()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)
        if holder.stdout is not None:
            holder.stdout.close()


def test_the_lock_file_names_its_holder(tmp_path: Path) -> None:
    path = tmp_path / "aggregator.lock"
    before = datetime.now().astimezone().replace(microsecond=0)
    with ProcessLock(path):
        document = json.loads(path.read_text())
        assert document["pid"] == os.getpid()
        started = datetime.fromisoformat(document["started"])
        assert before <= started <= datetime.now().astimezone()
        owner = read_owner(path)
        assert owner.pid == os.getpid()
        assert owner.describe() == f"pid {os.getpid()}, started {started.strftime('%H:%M:%S')}"
    assert path.exists()  # never deleted (a lock on a deleted file would not be seen)


def test_released_and_taken_again_in_the_same_process(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    path.write_text("not json")  # a stale, unreadable file is simply overwritten
    with ProcessLock(path) as lock:
        assert lock.held
    assert not lock.held
    with ProcessLock(path):
        assert read_owner(path).pid == os.getpid()


def test_an_unreadable_owner_is_described_as_unknown(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    path.write_text("")
    began = time.monotonic()
    owner = read_owner(path)
    assert owner.pid is None and owner.started is None
    assert owner.describe() == "pid unknown, started at an unknown time"
    assert time.monotonic() - began < 2
