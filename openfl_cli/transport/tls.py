"""TLS of the transport from PEM bytes: what a participant trusts and, optionally, who it is.

The transport never reads certificate files: whoever builds a participant (the PKI, a test, a FedJob)
hands it a `TlsMaterial`. grpc and cryptography are imported inside the functions that need them, so
that importing this module stays light.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import grpc

PEM_CERT_PROPERTY = "x509_pem_cert"  # gRPC auth-context key of the peer's verified certificate
COMMON_NAME_PROPERTY = "x509_common_name"

_CERT_MARK = b"-----BEGIN CERTIFICATE-----"
_KEY_MARK = b"PRIVATE KEY-----"


@dataclass(frozen=True)
class TlsMaterial:
    """PEM bytes of one participant's TLS.

    `trusted_chain`: the certificates a peer's certificate must chain to (the federation's authority).
    `certificate`: this participant's certificate, followed by the intermediates it needs; with
    `private_key`, its key. Both or neither: a client without them presents no certificate, a server
    needs them.
    """

    trusted_chain: bytes
    certificate: bytes | None = None
    private_key: bytes | None = field(default=None, repr=False)  # never printed in a log or traceback

    def __post_init__(self) -> None:
        if not isinstance(self.trusted_chain, bytes) or _CERT_MARK not in self.trusted_chain:
            raise ValueError("trusted_chain must be PEM bytes holding at least one certificate")
        if (self.certificate is None) != (self.private_key is None):
            raise ValueError("certificate and private_key come together: give both or neither")
        if self.certificate is not None and (
            not isinstance(self.certificate, bytes) or _CERT_MARK not in self.certificate
        ):
            raise ValueError("certificate must be PEM bytes of a certificate")
        if self.private_key is not None and (
            not isinstance(self.private_key, bytes) or _KEY_MARK not in self.private_key
        ):
            raise ValueError("private_key must be PEM bytes of a private key")

    @property
    def has_identity(self) -> bool:
        """Whether it holds a certificate and key to present in the handshake."""
        return self.certificate is not None

    def without_identity(self) -> TlsMaterial:
        """The same trust, presenting no certificate."""
        return TlsMaterial(self.trusted_chain)


def server_credentials(material: TlsMaterial, require_client_auth: bool = True) -> grpc.ServerCredentials:
    """Serve with `material`'s certificate; with `require_client_auth`, the handshake demands a client
    certificate that chains to `material.trusted_chain`."""
    import grpc

    if material.certificate is None or material.private_key is None:
        raise ValueError("a server needs a certificate and its private key")
    return grpc.ssl_server_credentials(
        [(material.private_key, material.certificate)],
        root_certificates=material.trusted_chain,
        require_client_auth=require_client_auth,
    )


def channel_credentials(material: TlsMaterial, with_client_cert: bool = True) -> grpc.ChannelCredentials:
    """Trust only `material.trusted_chain` (gRPC checks the server's name against its certificate) and,
    with `with_client_cert` and an identity, present `material`'s certificate."""
    import grpc

    if not with_client_cert or not material.has_identity:
        return grpc.ssl_channel_credentials(root_certificates=material.trusted_chain)
    return grpc.ssl_channel_credentials(
        root_certificates=material.trusted_chain,
        private_key=material.private_key,
        certificate_chain=material.certificate,
    )


def peer_common_name(context: grpc.ServicerContext) -> str | None:
    """The common name of the certificate the peer presented in the handshake (gRPC verified it), or
    None without one (or without exactly one common name)."""
    # each property holds a list of values (the stubs say one bytes value)
    auth = cast("Mapping[str, Sequence[bytes]]", context.auth_context() or {})
    names = auth.get(COMMON_NAME_PROPERTY) or []
    if names:
        return bytes(names[0]).decode("utf-8", "replace")
    pem = auth.get(PEM_CERT_PROPERTY) or []
    return _common_name_of(bytes(pem[0])) if pem else None


def peer_unit(context: grpc.ServicerContext) -> str | None:
    """The organizational unit of the peer's verified certificate (the role our authority wrote into
    it: "envoy", "experimenter"), or None without a certificate or without exactly one unit."""
    auth = cast("Mapping[str, Sequence[bytes]]", context.auth_context() or {})
    pem = auth.get(PEM_CERT_PROPERTY) or []
    return _subject_value(bytes(pem[0]), "unit") if pem else None


def _common_name_of(pem: bytes) -> str | None:
    return _subject_value(pem, "common name")


def _subject_value(pem: bytes, which: str) -> str | None:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError:
        return None  # unreadable: the caller refuses a peer without a name
    oid = NameOID.COMMON_NAME if which == "common name" else NameOID.ORGANIZATIONAL_UNIT_NAME
    values = certificate.subject.get_attributes_for_oid(oid)
    if len(values) != 1:
        return None
    value = values[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")
