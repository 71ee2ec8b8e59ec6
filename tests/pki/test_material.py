"""The PKI reads a node's PEM files into the transport's TlsMaterial, with errors that say what to run."""

from __future__ import annotations

from pathlib import Path

import pytest

from openfl_cli.errors import UsageError
from openfl_cli.pki import keys
from openfl_cli.pki.credentials import aggregator_material, collaborator_material
from openfl_cli.pki.layout import TlsPaths, aggregator_tls_paths, collaborator_tls_paths
from tests.pki.conftest import Federation


def test_aggregator_material_carries_its_certificate_then_the_signing_ca(federation: Federation) -> None:
    paths = federation.server
    material = aggregator_material(paths)
    chain = keys.parse_chain(paths.cert_chain.read_bytes(), "chain")
    presented = keys.parse_chain(material.certificate or b"", "presented")
    assert presented == [keys.load_certificate(paths.certificate), chain[0]]
    assert material.trusted_chain == paths.cert_chain.read_bytes()
    assert material.private_key == paths.private_key.read_bytes()
    assert "PRIVATE KEY" not in repr(material)


def test_a_collaborator_without_client_certificate_only_trusts(federation: Federation) -> None:
    material = collaborator_material(federation.client("one"), with_client_cert=False)
    assert not material.has_identity and material.private_key is None
    assert collaborator_material(federation.client("one")).has_identity


def test_missing_files_name_the_file_and_the_command(tmp_path: Path) -> None:
    with pytest.raises(
        UsageError, match=r"agg_localhost\.key: private key not found; run `fx aggregator certify`"
    ):
        aggregator_material(aggregator_tls_paths(tmp_path, "localhost"))
    paths = collaborator_tls_paths(tmp_path, "one")
    with pytest.raises(
        UsageError, match=r"private key not found; run `fx collaborator certify --import \.\.\.`"
    ):
        collaborator_material(paths)
    with pytest.raises(UsageError, match=r"cert_chain\.crt: certificate chain not found$"):
        collaborator_material(paths, with_client_cert=False)


def test_a_file_that_is_not_pem_is_refused(federation: Federation, tmp_path: Path) -> None:
    paths = federation.client("one")
    broken = tmp_path / "broken.key"
    broken.write_bytes(b"not a key\n")
    with pytest.raises(UsageError, match=r"not usable for TLS .*private_key must be PEM bytes"):
        collaborator_material(TlsPaths(paths.cert_chain, paths.certificate, broken))
