"""TlsMaterial: PEM bytes, validated when made; the key never shows in a repr."""

from __future__ import annotations

import pytest

from openfl_cli.transport.tls import TlsMaterial, peer_common_name
from tests.transport.conftest import Pki


def test_material_of_a_node(pki: Pki) -> None:
    material = pki.clients["one"].material()
    assert material.has_identity
    assert "PRIVATE" not in repr(material) and "private_key" not in repr(material)
    trust_only = material.without_identity()
    assert not trust_only.has_identity and trust_only.trusted_chain == material.trusted_chain


def test_certificate_and_key_come_together(pki: Pki) -> None:
    files = pki.clients["one"]
    chain, certificate, key = (
        files.cert_chain.read_bytes(),
        files.certificate.read_bytes(),
        files.private_key.read_bytes(),
    )
    with pytest.raises(ValueError, match="come together"):
        TlsMaterial(chain, certificate)
    with pytest.raises(ValueError, match="come together"):
        TlsMaterial(chain, None, key)
    with pytest.raises(ValueError, match="trusted_chain must be PEM"):
        TlsMaterial(b"")
    with pytest.raises(ValueError, match="certificate must be PEM"):
        TlsMaterial(chain, key, key)
    with pytest.raises(ValueError, match="private_key must be PEM"):
        TlsMaterial(chain, certificate, certificate)


class Context:
    def __init__(self, auth: dict[str, list[bytes]]) -> None:
        self._auth = auth

    def auth_context(self) -> dict[str, list[bytes]]:
        return self._auth


def test_peer_common_name_reads_the_handshake(pki: Pki) -> None:
    pem = pki.clients["two"].certificate.read_bytes()
    assert peer_common_name(Context({"x509_common_name": [b"two"]})) == "two"  # type: ignore[arg-type]
    assert peer_common_name(Context({"x509_pem_cert": [pem]})) == "two"  # type: ignore[arg-type]
    assert peer_common_name(Context({"x509_pem_cert": [b"garbage"]})) is None  # type: ignore[arg-type]
    assert peer_common_name(Context({})) is None  # type: ignore[arg-type]
