"""STEP 2 of the TaskRunner API document, followed literally with the real `fx` in three folders."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import pytest
import yaml

from openfl_cli.pki.credentials import Authorizer
from openfl_cli.pki.errors import NotAuthorized
from openfl_cli.pki.layout import aggregator_tls_paths, collaborator_tls_paths
from tests.conftest import run_fx
from tests.e2e.pki_flow import (
    FederationDirs,
    certify_federation,
    client_context,
    server_context,
    tls_handshake,
)

pytestmark = pytest.mark.e2e
NAMES = ["one", "two"]


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> FederationDirs:
    return certify_federation(tmp_path_factory.mktemp("cert_flow"), NAMES)


def _private(path: Path) -> bool:
    return path.is_file() and stat.S_IMODE(path.stat().st_mode) == 0o600


def test_every_documented_file_is_where_the_document_says(federation: FederationDirs) -> None:
    aggregator = federation.aggregator
    assert len({aggregator, *federation.collaborators.values()}) == 3
    assert (aggregator / "cert" / "cert_chain.crt").is_file()
    assert (aggregator / "cert" / "server" / "agg_localhost.crt").is_file()
    assert _private(aggregator / "cert" / "server" / "agg_localhost.key")
    assert _private(aggregator / "cert" / "ca" / "root-ca" / "private" / "root-ca.key")
    assert _private(aggregator / "cert" / "ca" / "signing-ca" / "private" / "signing-ca.key")
    cols = yaml.safe_load((aggregator / "plan" / "cols.yaml").read_text())
    assert cols == {"collaborators": NAMES}
    for index, (name, workspace) in enumerate(federation.collaborators.items(), start=1):
        assert (workspace / "cert" / "client" / f"col_{name}.csr").is_file()
        assert _private(workspace / "cert" / "client" / f"col_{name}.key")
        assert (workspace / "cert" / "client" / f"col_{name}.crt").is_file()
        assert (workspace / "cert" / "cert_chain.crt").read_bytes() == (
            aggregator / "cert" / "cert_chain.crt"
        ).read_bytes()
        assert (workspace / f"col_{name}_to_agg_cert_request.zip").is_file()
        assert (aggregator / f"agg_to_col_{name}_signed_cert.zip").is_file()
        assert yaml.safe_load((workspace / "plan" / "data.yaml").read_text()) == {name: str(index)}
        assert not (workspace / "cert" / "ca").exists()  # the authority never leaves the aggregator


def test_no_secret_in_any_zip(federation: FederationDirs) -> None:
    root = federation.aggregator.parent.parent
    archives = sorted(root.rglob("*.zip"))
    assert len(archives) >= 1 + 2 * 2 * len(NAMES)  # workspace + request and signed packages (and copies)
    for archive in archives:
        with zipfile.ZipFile(archive) as handle:
            for entry in handle.infolist():
                assert not entry.filename.endswith(".key"), (archive, entry.filename)
                assert b"PRIVATE KEY" not in handle.read(entry), (archive, entry.filename)


def test_tls_handshake_with_client_authentication(federation: FederationDirs) -> None:
    server = aggregator_tls_paths(federation.aggregator, "localhost")
    for name, workspace in federation.collaborators.items():
        done = tls_handshake(server_context(server), client_context(collaborator_tls_paths(workspace, name)))
        assert (done.client_common_name, done.server_common_name) == (name, "localhost")


def test_refusals_through_the_cli(federation: FederationDirs, tmp_path: Path) -> None:
    one, two = federation.collaborators["one"], federation.collaborators["two"]
    # one's node is handed two's signed package: not for its key (and not its name)
    done = run_fx(
        [
            "collaborator",
            "certify",
            "--import",
            str(federation.aggregator / "agg_to_col_two_signed_cert.zip"),
        ],
        cwd=one,
        check=False,
    )
    assert done.returncode == 2 and "no key" in done.stderr
    # one makes a new key: the certificate signed for its old key is refused on import
    done = run_fx(["collaborator", "generate-cert-request", "-n", "one", "--force", "-s"], cwd=one)
    old = federation.aggregator / "agg_to_col_one_signed_cert.zip"
    refused = run_fx(["collaborator", "certify", "--import", str(old)], cwd=one, check=False)
    assert refused.returncode == 2 and "not issued for this node's key" in refused.stderr
    # a request altered in transit: the hash the collaborator printed no longer matches
    done = run_fx(
        [
            "collaborator",
            "certify",
            "--request-pkg",
            str(two / "col_two_to_agg_cert_request.zip"),
            "--request-hash",
            done.stdout.split()[-1],
        ],
        cwd=federation.aggregator,
        check=False,
    )
    assert done.returncode == 2 and "does not match the expected" in done.stderr


def test_remove_takes_a_collaborator_out(federation: FederationDirs) -> None:
    authorizer = Authorizer(federation.aggregator, "plan/cols.yaml")
    two = collaborator_tls_paths(federation.collaborators["two"], "two").certificate.read_bytes()
    authorizer.check(two, "two")
    run_fx(["collaborator", "remove", "-n", "two"], cwd=federation.aggregator)
    with pytest.raises(NotAuthorized, match="revoked"):
        authorizer.check(two, "two")
    assert yaml.safe_load((federation.aggregator / "plan" / "cols.yaml").read_text()) == {
        "collaborators": ["one"]
    }
