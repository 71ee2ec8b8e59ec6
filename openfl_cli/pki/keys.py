"""Key pairs, hashes and PEM files: the algorithm choices of the whole authority live here.

ECDSA on P-384 with SHA-384 (about 192-bit security): key generation and signatures take well under a
millisecond, and gRPC's TLS (BoringSSL) supports it, unlike Ed25519 certificates.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from openfl_cli.errors import UsageError
from openfl_cli.pki.errors import CertificateError
from openfl_cli.utils.fs import atomic_write_bytes, write_private

CURVE = ec.SECP384R1
SIGNATURE_HASH = hashes.SHA384
REQUEST_HASH = "sha384"  # the digest of a request's DER the operators compare
MIN_RSA_BITS = 2048
ACCEPTED_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)  # what gRPC's TLS accepts in requests

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def new_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(CURVE())


def write_key(path: Path, key: PrivateKey) -> None:
    """PKCS#8 PEM, mode 0600 from the first byte; its folder is made 0700 when it is a `private/` one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.parent.name == "private":
        os.chmod(path.parent, 0o700)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_private(path, pem)


def load_private_key(path: Path) -> PrivateKey:
    data = _read(path, "private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as error:
        raise CertificateError(f"{path}: not a readable PEM private key ({error})") from None
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise CertificateError(f"{path}: unsupported key type {type(key).__name__}")
    return key


def write_pem(path: Path, *objects: x509.Certificate | x509.CertificateSigningRequest) -> None:
    atomic_write_bytes(path, b"".join(item.public_bytes(serialization.Encoding.PEM) for item in objects))


def pem_bytes(*objects: x509.Certificate | x509.CertificateSigningRequest) -> bytes:
    return b"".join(item.public_bytes(serialization.Encoding.PEM) for item in objects)


def parse_certificate(data: bytes, source: str) -> x509.Certificate:
    """One certificate, PEM or DER."""
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as error:
        raise CertificateError(f"{source}: not a readable certificate ({error})") from None


def load_certificate(path: Path) -> x509.Certificate:
    return parse_certificate(_read(path, "certificate"), str(path))


def parse_chain(data: bytes, source: str) -> list[x509.Certificate]:
    try:
        chain = x509.load_pem_x509_certificates(data)
    except ValueError as error:
        raise CertificateError(f"{source}: not a readable certificate chain ({error})") from None
    return chain


def load_chain(path: Path) -> list[x509.Certificate]:
    return parse_chain(_read(path, "certificate chain"), str(path))


def parse_request(data: bytes, source: str) -> x509.CertificateSigningRequest:
    try:
        request = x509.load_pem_x509_csr(data) if b"-----BEGIN" in data else x509.load_der_x509_csr(data)
    except ValueError as error:
        raise CertificateError(f"{source}: not a readable certificate signing request ({error})") from None
    if not request.is_signature_valid:
        raise CertificateError(f"{source}: the request's signature is invalid (tampered or corrupt)")
    check_public_key(request.public_key(), source)
    return request


def load_request(path: Path) -> x509.CertificateSigningRequest:
    return parse_request(_read(path, "certificate signing request"), str(path))


def check_public_key(key: object, source: str) -> None:
    """Accept only keys gRPC's TLS can use, at a sound size."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ACCEPTED_CURVES):
            raise CertificateError(f"{source}: curve {key.curve.name} is not accepted (use P-256 or P-384)")
        return
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise CertificateError(f"{source}: RSA key of {key.key_size} bits is too small")
        return
    raise CertificateError(f"{source}: key type {type(key).__name__} is not accepted (use ECDSA or RSA)")


def request_hash(request: x509.CertificateSigningRequest) -> str:
    """The hex digest of the request's DER, printed on both nodes for the operators to compare."""
    return hashlib.new(REQUEST_HASH, request.public_bytes(serialization.Encoding.DER)).hexdigest()


def normalize_hash(text: str) -> str:
    """A digest as an operator may type it: any case, with colons or spaces."""
    return "".join(ch for ch in text.lower() if ch not in ": \t")


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate's DER, hex."""
    return cert.fingerprint(hashes.SHA256()).hex()


def serial_hex(cert: x509.Certificate) -> str:
    return format(cert.serial_number, "x")


def public_key_der(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def common_name(name: x509.Name) -> str | None:
    values = name.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    if len(values) != 1:
        return None
    value = values[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{path}: {what} not found") from None
    except OSError as error:
        raise UsageError(f"{path}: cannot read the {what} ({error})") from None
