from __future__ import annotations

import hashlib
import ipaddress
import stat
import zipfile
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from openfl_cli.errors import SecurityError, UsageError
from openfl_cli.pki import keys
from openfl_cli.pki.ca import create_authority
from openfl_cli.pki.errors import CertificateError
from openfl_cli.pki.layout import aggregator_tls_paths, collaborator_stem, collaborator_tls_paths
from openfl_cli.pki.registry import ISSUED, read_records
from openfl_cli.pki.requests import aggregator_request, collaborator_request
from openfl_cli.pki.roster import read_collaborators
from openfl_cli.pki.signing import certify_aggregator, certify_collaborator, import_certificate
from openfl_cli.pki.verify import has_usage, verify_chain
from tests.pki.conftest import Federation, make_workspace


def test_collaborator_request_files_and_package(tmp_path: Path) -> None:
    node = make_workspace(tmp_path / "col")
    created = collaborator_request(node, "one")
    assert created.request_path == node / "cert" / "client" / "col_one.csr"
    assert created.key_path == node / "cert" / "client" / "col_one.key"
    assert stat.S_IMODE(created.key_path.stat().st_mode) == 0o600
    assert created.package == node / "col_one_to_agg_cert_request.zip"
    with zipfile.ZipFile(created.package) as archive:
        assert archive.namelist() == ["col_one.csr"]
        assert b"PRIVATE KEY" not in archive.read("col_one.csr")
    der = x509.load_pem_x509_csr(created.request_path.read_bytes()).public_bytes(serialization.Encoding.DER)
    assert created.hash == hashlib.sha384(der).hexdigest()


def test_request_refuses_to_replace_a_key_without_force(tmp_path: Path) -> None:
    node = make_workspace(tmp_path / "col")
    first = collaborator_request(node, "one")
    with pytest.raises(UsageError, match="already exists; use --force"):
        collaborator_request(node, "one")
    assert collaborator_request(node, "one", force=True).hash != first.hash


@pytest.mark.parametrize("name", ["", ".", "..", "../x", "a/b", "a\\b", "/abs", "col one", "x" * 129])
def test_bad_collaborator_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(UsageError, match="invalid collaborator name"):
        collaborator_request(make_workspace(tmp_path / "col"), name)
    with pytest.raises(UsageError, match="invalid collaborator name"):
        collaborator_stem(tmp_path, name)


def test_aggregator_certificate(federation: Federation) -> None:
    paths = federation.server
    assert paths.certificate.name == "agg_localhost.crt" and paths.private_key.name == "agg_localhost.key"
    assert stat.S_IMODE(paths.private_key.stat().st_mode) == 0o600
    cert = keys.load_certificate(paths.certificate)
    assert has_usage(cert, ExtendedKeyUsageOID.SERVER_AUTH)
    assert not has_usage(cert, ExtendedKeyUsageOID.CLIENT_AUTH)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    verify_chain(cert, keys.load_chain(paths.cert_chain), usage=ExtendedKeyUsageOID.SERVER_AUTH)


def test_aggregator_ip_address_goes_in_as_ip_entry(tmp_path: Path) -> None:
    workspace = make_workspace(tmp_path / "agg")
    create_authority(workspace)
    aggregator_request(workspace, "10.1.2.3")
    certify_aggregator(workspace, "10.1.2.3")
    cert = keys.load_certificate(aggregator_tls_paths(workspace, "10.1.2.3").certificate)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.1.2.3")]
    assert san.get_values_for_type(x509.DNSName) == []


def test_dotted_fqdn_keeps_its_dots(tmp_path: Path) -> None:
    workspace = make_workspace(tmp_path / "agg")
    created = aggregator_request(workspace, "agg.example.com")
    assert created.request_path.name == "agg_agg.example.com.csr"
    assert aggregator_tls_paths(workspace, "agg.example.com").certificate.name == "agg_agg.example.com.crt"


def test_aggregator_certify_needs_a_request_and_an_authority(tmp_path: Path) -> None:
    workspace = make_workspace(tmp_path / "agg")
    with pytest.raises(UsageError, match="generate-cert-request"):
        certify_aggregator(workspace, "localhost")
    aggregator_request(workspace, "localhost")
    with pytest.raises(UsageError, match="fx workspace certify"):
        certify_aggregator(workspace, "localhost")


def test_collaborator_certificate_cols_and_index(federation: Federation) -> None:
    assert read_collaborators(federation.aggregator / "plan" / "cols.yaml") == ["one", "two"]
    for name in ("one", "two"):
        paths = federation.client(name)
        cert = keys.load_certificate(paths.certificate)
        assert keys.common_name(cert.subject) == name
        assert has_usage(cert, ExtendedKeyUsageOID.CLIENT_AUTH)
        assert not has_usage(cert, ExtendedKeyUsageOID.SERVER_AUTH)
        verify_chain(cert, keys.load_chain(paths.cert_chain), usage=ExtendedKeyUsageOID.CLIENT_AUTH)
        with zipfile.ZipFile(federation.aggregator / f"agg_to_col_{name}_signed_cert.zip") as archive:
            assert sorted(archive.namelist()) == ["cert_chain.crt", f"client/col_{name}.crt"]
    issued = read_records(federation.aggregator / "cert" / "ca" / "index.yaml", ISSUED)
    assert [(r.name, r.role) for r in issued] == [
        ("localhost", "aggregator"),
        ("one", "collaborator"),
        ("two", "collaborator"),
    ]


def test_hash_mismatch_is_refused(federation: Federation, tmp_path: Path) -> None:
    node = make_workspace(tmp_path / "three")
    created = collaborator_request(node, "three")
    with pytest.raises(CertificateError, match="does not match the expected"):
        certify_collaborator(federation.aggregator, created.package, expected_hash="00" * 48)  # type: ignore[arg-type]
    with pytest.raises(CertificateError, match="did not confirm"):
        certify_collaborator(federation.aggregator, created.package, confirm=lambda digest: False)  # type: ignore[arg-type]
    assert "three" not in read_collaborators(federation.aggregator / "plan" / "cols.yaml")
    seen: list[str] = []
    upper = ":".join(created.hash[i : i + 2] for i in range(0, len(created.hash), 2)).upper()
    certify_collaborator(federation.aggregator, created.package, expected_hash=upper)  # type: ignore[arg-type]
    certify_collaborator(federation.aggregator, created.package, confirm=lambda d: seen.append(d) or True)  # type: ignore[arg-type]
    assert seen == [created.hash]


def test_tampered_request_is_refused(federation: Federation, tmp_path: Path) -> None:
    node = make_workspace(tmp_path / "three")
    created = collaborator_request(node, "three")
    other = collaborator_request(make_workspace(tmp_path / "four"), "four")
    bad = tmp_path / "col_three_to_agg_cert_request.zip"
    with zipfile.ZipFile(bad, "w") as archive:  # a request for "four" under the name "three"
        archive.writestr("col_three.csr", other.request_path.read_bytes())
    with pytest.raises(CertificateError, match="common name 'four' differs"):
        certify_collaborator(federation.aggregator, bad)
    with zipfile.ZipFile(bad, "w") as archive:
        archive.writestr("col_three.csr", created.request_path.read_bytes())
        archive.writestr("col_three.key", created.key_path.read_bytes())
    with pytest.raises(CertificateError, match="may be a private key"):
        certify_collaborator(federation.aggregator, bad)


@pytest.mark.parametrize("entry", ["../col_x.csr", "/etc/col_x.csr", "a/../../col_x.csr"])
def test_request_package_with_traversal_is_refused(
    federation: Federation, tmp_path: Path, entry: str
) -> None:
    bad = tmp_path / "evil.zip"
    with zipfile.ZipFile(bad, "w") as archive:
        archive.writestr(entry, b"x")
    with pytest.raises(SecurityError, match="outside"):
        certify_collaborator(federation.aggregator, bad)


def test_signed_package_with_traversal_is_refused(federation: Federation, tmp_path: Path) -> None:
    bad = tmp_path / "evil.zip"
    with zipfile.ZipFile(bad, "w") as archive:
        archive.writestr("client/col_one.crt", federation.client("one").certificate.read_bytes())
        archive.writestr("cert_chain.crt", federation.client("one").cert_chain.read_bytes())
        archive.writestr("../../plan/cols.yaml", b"collaborators: [mallory]\n")
    with pytest.raises(SecurityError, match="outside"):
        import_certificate(federation.collaborators["one"], bad)


def test_import_refuses_a_certificate_for_another_key(federation: Federation) -> None:
    # collaborator "one" is handed "two"'s package renamed: the certificate is not for one's key
    one = federation.collaborators["one"]
    package = one / "swapped.zip"
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("client/col_one.crt", _cert_with_cn(federation, "two", "one"))
        archive.writestr("cert_chain.crt", federation.client("one").cert_chain.read_bytes())
    with pytest.raises(CertificateError, match="not issued for this node's key"):
        import_certificate(one, package)


def _cert_with_cn(federation: Federation, holder: str, cn: str) -> bytes:
    """A certificate for `holder`'s key with common name `cn`, signed by the federation's authority."""
    from tests.pki.conftest import sign_custom

    cert = keys.load_certificate(federation.client(holder).certificate)
    forged = sign_custom(
        federation.authority,
        cert.public_key(),
        cn,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
    )
    return keys.pem_bytes(forged)


def test_import_refuses_another_authority(
    federation: Federation, foreign: Federation, tmp_path: Path
) -> None:
    node = make_workspace(tmp_path / "fresh")
    created = collaborator_request(node, "three")
    # signed by the foreign authority, shipped with our chain
    certify_collaborator(foreign.aggregator, created.package, expected_hash=created.hash)  # type: ignore[arg-type]
    foreign_cert = (foreign.aggregator / "cert" / "client" / "col_three.crt").read_bytes()
    mixed = tmp_path / "mixed.zip"
    with zipfile.ZipFile(mixed, "w") as archive:
        archive.writestr("client/col_three.crt", foreign_cert)
        archive.writestr("cert_chain.crt", federation.server.cert_chain.read_bytes())
    with pytest.raises(CertificateError, match="not issued by this federation's authority"):
        import_certificate(node, mixed)
    assert not collaborator_tls_paths(node, "three").cert_chain.exists()
    # a whole foreign package where a chain is already trusted
    (node / "cert" / "cert_chain.crt").write_bytes(federation.server.cert_chain.read_bytes())
    with pytest.raises(CertificateError, match="differs from the one this workspace already trusts"):
        import_certificate(node, foreign.aggregator / "agg_to_col_three_signed_cert.zip")
    assert not collaborator_tls_paths(node, "three").certificate.exists()


def test_import_without_a_local_request(federation: Federation, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no key"):
        import_certificate(
            make_workspace(tmp_path / "empty"), federation.aggregator / "agg_to_col_one_signed_cert.zip"
        )
