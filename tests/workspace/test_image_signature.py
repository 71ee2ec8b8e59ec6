"""Signed workspace images: signed by a certified node, checked against the receiver's own authority."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from openfl_cli.errors import UsageError
from openfl_cli.pki.errors import CertificateError
from openfl_cli.pki.revocation import remove
from openfl_cli.workspace.image_signature import sign_image, verify_image
from tests.pki.conftest import Federation, build_federation
from tests.workspace.cli_run import fx_in_process


@pytest.fixture
def federation(tmp_path: Path) -> Federation:
    return build_federation(tmp_path / "fed", names=("one",))


@pytest.fixture
def tarball(federation: Federation) -> Path:
    path = federation.aggregator / "agg.tar"
    path.write_bytes(b"image layers " * 100_000)
    return path


def test_the_aggregator_signs_and_a_collaborator_verifies(federation: Federation, tarball: Path) -> None:
    signature, signed = sign_image(tarball, federation.aggregator)
    assert signature == tarball.with_name("agg.tar.sig")
    assert (signed.signer, signed.role, signed.size) == ("localhost", "aggregator", tarball.stat().st_size)
    document = json.loads(signature.read_text())
    assert "PRIVATE KEY" not in signature.read_text() and document["signer"].startswith("-----BEGIN CERT")

    received = federation.collaborators["one"] / "agg.tar"  # what a participant was sent
    received.write_bytes(tarball.read_bytes())
    received.with_name("agg.tar.sig").write_bytes(signature.read_bytes())
    checked = verify_image(received, federation.collaborators["one"])
    assert checked == signed


def test_a_tampered_tarball_is_refused(federation: Federation, tarball: Path) -> None:
    sign_image(tarball, federation.aggregator)
    data = bytearray(tarball.read_bytes())
    data[len(data) // 2] ^= 0x01
    tarball.write_bytes(bytes(data))
    with pytest.raises(CertificateError, match="altered after signing; do not load it"):
        verify_image(tarball, federation.aggregator)


def test_a_tampered_signature_is_refused(federation: Federation, tarball: Path) -> None:
    signature, _ = sign_image(tarball, federation.aggregator)
    document = json.loads(signature.read_text())
    tarball.write_bytes(b"another image")
    document["size"] = tarball.stat().st_size  # claims the new file, but the signature is over the old
    import hashlib

    document["sha384"] = hashlib.sha384(tarball.read_bytes()).hexdigest()
    signature.write_text(json.dumps(document))
    with pytest.raises(CertificateError, match="the signature is invalid"):
        verify_image(tarball, federation.aggregator)


def test_a_signer_from_another_federation_is_refused(
    federation: Federation, tarball: Path, tmp_path: Path
) -> None:
    other = build_federation(tmp_path / "other", names=())
    sign_image(tarball, other.aggregator, certificate=other.server.certificate, key=other.server.private_key)
    with pytest.raises(CertificateError, match="the signer is not trusted here"):
        verify_image(tarball, federation.aggregator)


def test_a_revoked_signer_is_refused(federation: Federation, tarball: Path) -> None:
    node = federation.collaborators["one"]
    sign_image(tarball, node)  # a collaborator's certificate may sign too
    assert verify_image(tarball, federation.aggregator).role == "collaborator"
    remove(federation.aggregator, "one")
    with pytest.raises(CertificateError, match="revoked"):
        verify_image(tarball, federation.aggregator)


def test_no_chain_no_verification(tarball: Path, tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    (bare / "plan").mkdir(parents=True)
    (bare / "plan" / "plan.yaml").write_text("{}\n")
    with pytest.raises(UsageError, match=r"cert_chain\.crt not found"):
        verify_image(tarball, bare)
    with pytest.raises(UsageError, match="no certified key to sign with"):
        sign_image(tarball, bare)


def test_commands(
    federation: Federation, tarball: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(federation.aggregator)
    code, out, err = fx_in_process(["workspace", "sign-image", "agg.tar"], capsys)
    assert code == 0, err
    assert "as aggregator localhost" in out and "Wrote " in out and "agg.tar.sig" in out
    code, out, err = fx_in_process(["workspace", "verify-image", "agg.tar"], capsys)
    assert code == 0 and "signature valid; signed by aggregator localhost" in out, err
    assert "docker load -i agg.tar" in out
    tarball.write_bytes(tarball.read_bytes() + b"x")
    code, out, err = fx_in_process(["workspace", "verify-image", "agg.tar"], capsys)
    assert code == 2 and err.count("\n") == 1 and "altered after signing" in err and "docker load" not in out
