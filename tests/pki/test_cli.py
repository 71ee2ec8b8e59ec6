"""The certificate commands as a user runs them: exit codes and one-line messages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from openfl_cli.pki.requests import collaborator_request
from tests.conftest import run_fx
from tests.pki.conftest import Federation, make_workspace


def test_cli_module_imports_no_cryptography() -> None:
    code = (
        "import sys, openfl_cli.cli.pki; "
        "print(any(m.startswith(('cryptography', 'grpc')) for m in sys.modules))"
    )
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
    )


@pytest.mark.parametrize("name", ["../evil", "a/b", "..", ""])
def test_bad_name_is_refused(tmp_path: Path, name: str) -> None:
    workspace = make_workspace(tmp_path / "ws")
    for command in (
        ["collaborator", "generate-cert-request", "-n", name],
        ["collaborator", "create", "-n", name, "-d", "1"],
    ):
        done = run_fx(command, cwd=workspace, check=False)
        assert done.returncode == 2, done.stderr
        assert "invalid collaborator name" in done.stderr
    assert not (workspace / "cert").exists()


def test_certify_needs_exactly_one_package(tmp_path: Path) -> None:
    done = run_fx(["collaborator", "certify"], cwd=make_workspace(tmp_path / "ws"), check=False)
    assert done.returncode == 2 and "exactly one of --request-pkg" in done.stderr


def test_hash_mismatch_and_refused_confirmation(federation: Federation, tmp_path: Path) -> None:
    created = collaborator_request(make_workspace(tmp_path / "three"), "three")
    certify = ["collaborator", "certify", "--request-pkg", str(created.package)]
    done = run_fx([*certify, "--request-hash", "ab" * 48], cwd=federation.aggregator, check=False)
    assert done.returncode == 2
    assert "does not match the expected" in done.stderr and done.stderr.count("\n") == 1
    done = run_fx(certify, cwd=federation.aggregator, check=False, input="n\n")
    assert done.returncode == 2 and created.hash in done.stdout and "did not confirm" in done.stderr
    assert not (federation.aggregator / "agg_to_col_three_signed_cert.zip").exists()
    done = run_fx(certify, cwd=federation.aggregator, input="y\n")
    assert (federation.aggregator / "agg_to_col_three_signed_cert.zip").exists()


def test_create_records_the_data_path(tmp_path: Path) -> None:
    workspace = make_workspace(tmp_path / "ws")
    done = run_fx(["collaborator", "create", "-n", "one", "-s"], cwd=workspace, check=False)
    assert done.returncode == 2 and "no data path" in done.stderr
    run_fx(["collaborator", "create", "-n", "one"], cwd=workspace, input="data/one\n")
    run_fx(["collaborator", "create", "-n", "two", "-d", "2"], cwd=workspace)
    assert (workspace / "plan" / "data.yaml").read_text() == "one: data/one\ntwo: '2'\n"


def test_workspace_certify_refuses_to_overwrite(tmp_path: Path) -> None:
    workspace = make_workspace(tmp_path / "ws")
    run_fx(["workspace", "certify"], cwd=workspace)
    done = run_fx(["workspace", "certify"], cwd=workspace, check=False)
    assert done.returncode == 2 and "--force" in done.stderr
    run_fx(["workspace", "certify", "--force"], cwd=workspace)


def test_outside_a_workspace(tmp_path: Path) -> None:
    done = run_fx(["workspace", "certify"], cwd=tmp_path, check=False)
    assert done.returncode == 2 and "is not a workspace" in done.stderr


def test_fqdn_from_the_environment(tmp_path: Path) -> None:
    workspace = make_workspace(tmp_path / "ws")
    run_fx(["workspace", "certify"], cwd=workspace)
    env = {"FQDN": "agg.example.org"}
    printed = run_fx(["aggregator", "generate-cert-request"], cwd=workspace, env=env).stdout
    assert "agg_agg.example.org.csr" in printed
    run_fx(["aggregator", "certify", "-s"], cwd=workspace, env=env)
    assert (workspace / "cert" / "server" / "agg_agg.example.org.crt").is_file()
    done = run_fx(["aggregator", "certify", "--fqdn", "../x", "-s"], cwd=workspace, check=False)
    assert done.returncode == 2 and "invalid FQDN" in done.stderr
