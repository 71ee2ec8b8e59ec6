"""Path validation of a node certificate against the federation's two-certificate chain."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID

from openfl_cli.pki.errors import CertificateError
from openfl_cli.pki.keys import fingerprint


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def check_validity(cert: x509.Certificate, what: str, at: dt.datetime | None = None) -> None:
    moment = at or now()
    if moment < cert.not_valid_before_utc:
        raise CertificateError(f"{what} is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")
    if moment > cert.not_valid_after_utc:
        raise CertificateError(f"{what} expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def has_usage(cert: x509.Certificate, usage: x509.ObjectIdentifier) -> bool:
    try:
        return usage in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False


def verify_chain(
    leaf: x509.Certificate,
    chain: Sequence[x509.Certificate],
    *,
    usage: x509.ObjectIdentifier | None = None,
    at: dt.datetime | None = None,
) -> None:
    """Check that `leaf` was signed by chain[0], each CA by the next, and the last is a self-signed root.

    `chain` is `cert_chain.crt`: the signing CA, then the root. Raises CertificateError naming the
    broken link.
    """
    if not chain:
        raise CertificateError("the certificate chain is empty")
    subject = leaf.subject.rfc4514_string()
    if is_ca(leaf):
        raise CertificateError(f"certificate {subject!r} is a CA certificate, not a node certificate")
    if usage is not None and not has_usage(leaf, usage):
        label = "client" if usage == ExtendedKeyUsageOID.CLIENT_AUTH else "server"
        raise CertificateError(f"certificate {subject!r} is not a TLS {label} certificate")
    check_validity(leaf, f"certificate {subject!r}", at)
    links = [leaf, *chain]
    for child, issuer in itertools.pairwise(links):
        if not is_ca(issuer):
            raise CertificateError(f"chain certificate {issuer.subject.rfc4514_string()!r} is not a CA")
        _signed_by(child, issuer)
        check_validity(issuer, f"authority certificate {issuer.subject.rfc4514_string()!r}", at)
    root = links[-1]
    _signed_by(root, root)


def _signed_by(child: x509.Certificate, issuer: x509.Certificate) -> None:
    try:
        child.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        raise CertificateError(
            f"certificate {child.subject.rfc4514_string()!r} (issuer {child.issuer.rfc4514_string()!r}, "
            f"SHA-256 {fingerprint(child)[:16]}...) was not issued by this federation's authority "
            f"{issuer.subject.rfc4514_string()!r}"
        ) from None
