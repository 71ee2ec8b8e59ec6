"""`fx aggregator start` owns its workspace: a second one is refused at once, stale temporaries of a
killed writer are removed at start. Real processes in a certified workspace (see tests/e2e)."""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import run_fx
from tests.e2e.federation_run import Federation
from tests.e2e.test_federation import certified, make_federation  # noqa: F401 - the e2e fixtures

pytestmark = pytest.mark.e2e


def test_a_second_aggregator_in_the_workspace_is_refused(make_federation) -> None:  # noqa: F811
    federation: Federation = make_federation()
    workspace = federation.aggregator
    stale = [workspace / "save" / ".init.pbuf.abc.tmp", workspace / "save" / ".last.pbuf.x1y2z3_q.tmp"]
    for path in stale:
        path.write_bytes(b"torn snapshot")
    normal = workspace / "save" / "notes.txt"
    normal.write_text("mine")

    first = federation.start_aggregator()
    federation.wait_for("aggregator.log", rf"listening on .*:{federation.port}")
    assert not any(path.exists() for path in stale), "stale temporaries survived the start"
    assert normal.read_text() == "mine"
    first_log = federation.log("aggregator.log")
    for path in stale:
        assert f"removed a stale temporary file {path} (13 bytes)" in first_log, first_log
    owner = json.loads((workspace / "local_state" / "aggregator.lock").read_text())
    assert owner["pid"] == first.pid

    began = time.monotonic()
    second = run_fx(["aggregator", "start"], workspace, check=False, timeout=60)
    assert time.monotonic() - began < 20
    assert second.returncode == 2, second.stdout + second.stderr
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1, second.stderr
    assert re.fullmatch(
        rf"fx: error: {re.escape(str(workspace))}: another aggregator \(pid {first.pid},"
        r" started \d\d:\d\d:\d\d\) runs in this workspace",
        lines[0],
    ), lines[0]
    assert "serving" not in second.stdout and "listening" not in second.stdout

    assert first.poll() is None, "the first aggregator stopped"
    ping = run_fx(["collaborator", "ping", "-n", "one"], cwd=federation.collaborators["one"])
    assert "plan hash matches" in ping.stdout, ping.stdout

    federation.kill(first, signal.SIGKILL)  # a crash never leaves the workspace locked
    again = federation.start_aggregator("again.log")
    federation.wait_for("again.log", rf"listening on .*:{federation.port}")
    assert json.loads((workspace / "local_state" / "aggregator.lock").read_text())["pid"] == again.pid
    federation.kill(again)


def test_the_workspace_lock_refuses_a_second_holder_naming_the_first(tmp_path: Path) -> None:
    import os

    from openfl_cli.errors import UsageError
    from openfl_cli.node.aggregator import AGGREGATOR_LOCK, workspace_lock

    assert AGGREGATOR_LOCK == "local_state/aggregator.lock"
    lock = workspace_lock(tmp_path)
    try:
        with pytest.raises(UsageError) as refused:  # another open file description: refused as well
            workspace_lock(tmp_path)
        assert refused.value.exit_code == 2
        assert re.fullmatch(
            rf"{re.escape(str(tmp_path))}: another aggregator \(pid {os.getpid()}, started"
            r" \d\d:\d\d:\d\d\) runs in this workspace",
            str(refused.value),
        ), str(refused.value)
    finally:
        lock.release()
    workspace_lock(tmp_path).release()
