"""Fixtures: minimal workspaces with an authority, an aggregator and collaborators, made with the library."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from openfl_cli.pki import keys
from openfl_cli.pki.ca import Authority, create_authority, load_authority
from openfl_cli.pki.layout import TlsPaths, aggregator_tls_paths, collaborator_tls_paths
from openfl_cli.pki.requests import aggregator_request, collaborator_request
from openfl_cli.pki.signing import certify_aggregator, certify_collaborator, import_certificate


def make_workspace(folder: Path) -> Path:
    (folder / "plan").mkdir(parents=True)
    (folder / "plan" / "plan.yaml").write_text("aggregator: {}\n")
    (folder / "plan" / "cols.yaml").write_text("collaborators: []\n")
    (folder / "plan" / "data.yaml").write_text("{}\n")
    return folder


@dataclass
class Federation:
    aggregator: Path
    fqdn: str
    collaborators: dict[str, Path]

    @property
    def server(self) -> TlsPaths:
        return aggregator_tls_paths(self.aggregator, self.fqdn)

    def client(self, name: str) -> TlsPaths:
        return collaborator_tls_paths(self.collaborators[name], name)

    @property
    def authority(self) -> Authority:
        return load_authority(self.aggregator)


def enroll(aggregator: Path, node: Path, name: str) -> Path:
    """The collaborator half of the flow, through the library: request, sign, import."""
    created = collaborator_request(node, name)
    certify_collaborator(aggregator, created.package, expected_hash=created.hash)  # type: ignore[arg-type]
    import_certificate(node, aggregator / f"agg_to_col_{name}_signed_cert.zip")
    return node


def build_federation(
    root: Path, names: tuple[str, ...] = ("one", "two"), fqdn: str = "localhost"
) -> Federation:
    aggregator = make_workspace(root / "agg")
    create_authority(aggregator)
    aggregator_request(aggregator, fqdn)
    certify_aggregator(aggregator, fqdn)
    nodes = {name: enroll(aggregator, make_workspace(root / f"col_{name}"), name) for name in names}
    return Federation(aggregator, fqdn, nodes)


@pytest.fixture
def federation(tmp_path: Path) -> Federation:
    return build_federation(tmp_path)


@pytest.fixture
def foreign(tmp_path: Path) -> Federation:
    """Another federation with its own authority and the same names."""
    return build_federation(tmp_path / "foreign")


def sign_custom(
    authority: Authority,
    public_key: object,
    name: str,
    *,
    not_before: dt.datetime,
    not_after: dt.datetime,
    usage: x509.ObjectIdentifier = ExtendedKeyUsageOID.CLIENT_AUTH,
    san: str | None = None,
) -> x509.Certificate:
    """A node certificate with any validity (e.g. expired), signed by `authority`'s signing CA."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(authority.signing_cert.subject)
        .public_key(public_key)  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False)
    return builder.sign(authority.signing_key, keys.SIGNATURE_HASH())
