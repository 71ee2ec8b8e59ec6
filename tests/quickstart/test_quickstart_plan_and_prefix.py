"""`fx quickstart`: its aggregator listens on 127.0.0.1 only; its prefix folder is ignored by git."""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

import pytest
import yaml

from openfl_cli.quickstart import flow
from tests.conftest import FX, fx_env
from tests.e2e.test_federation import _listening_addresses


def test_the_plan_binds_the_loopback_address(tmp_path: Path) -> None:
    plan_file = tmp_path / "plan" / "plan.yaml"
    plan_file.parent.mkdir()
    plan_file.write_text(yaml.safe_dump({"network": {"settings": {"bind_addr": "0.0.0.0", "agg_port": 1}}}))
    flow._set_plan_values(tmp_path, rounds=2, collaborators=3)
    plan = yaml.safe_load(plan_file.read_text())
    assert plan["network"]["settings"] == {"bind_addr": "127.0.0.1", "agg_port": 1}
    assert plan["aggregator"]["settings"]["rounds_to_train"] == 2


def test_localhost_binds_127_0_0_1() -> None:
    assert flow.bind_address("localhost") == "127.0.0.1"
    assert flow.bind_address("127.0.0.1") == "127.0.0.1"
    assert flow.bind_address("10.1.2.3") == "10.1.2.3"  # a name collaborators reach elsewhere


def test_a_prefix_created_inside_a_git_work_tree_is_ignored(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    prefix = repo / "deep" / "qs"
    flow._make_prefix(prefix)
    assert (prefix / ".gitignore").read_text() == "*\n"


def test_no_gitignore_outside_git_or_in_a_folder_it_did_not_create(tmp_path: Path) -> None:
    outside = tmp_path / "plain" / "qs"
    flow._make_prefix(outside)
    assert outside.is_dir() and not (outside / ".gitignore").exists()
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    existing = repo / "qs"
    existing.mkdir()
    flow._make_prefix(existing)
    assert not (existing / ".gitignore").exists()


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_itself_ignores_the_prefix(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    prefix = repo / "qs"
    flow._make_prefix(prefix)
    (prefix / "key.pem").write_text("secret")
    status = subprocess.run(
        ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=all"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert status.stdout == ""


@pytest.mark.e2e
@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's socket table")
def test_the_quickstart_aggregator_listens_on_127_0_0_1(tmp_path: Path) -> None:
    prefix = (tmp_path / "qs").resolve()
    args = ["quickstart", "--template", "numpy/digits", "--rounds", "500", "--prefix", str(prefix)]
    quickstart = subprocess.Popen(
        [*FX, *args], cwd=tmp_path, env=fx_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    seen: list[str] = []
    try:
        assert quickstart.stdout is not None
        for line in quickstart.stdout:
            seen.append(line)
            if "round 2/500" in line:
                break
        else:
            pytest.fail("the quickstart ended before its federation ran:\n" + "".join(seen))
        plan = yaml.safe_load((prefix / "aggregator" / "federation" / "plan" / "plan.yaml").read_text())
        port = int(plan["network"]["settings"]["agg_port"])
        assert plan["network"]["settings"]["bind_addr"] == "127.0.0.1"
        assert _listening_addresses(port) == {"127.0.0.1"}
        assert any(f"the aggregator listens on 127.0.0.1:{port}" in line for line in seen), "".join(seen)
        quickstart.send_signal(signal.SIGINT)
        quickstart.communicate(timeout=60)
    finally:
        if quickstart.poll() is None:
            quickstart.kill()
            quickstart.wait(10)
