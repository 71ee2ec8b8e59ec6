"""Signing requests on the authority's node, and importing the signed certificate on a collaborator's.

`certify_server` and `install_certificate` are the steps without the TaskRunner's names and places; the
Workflow API's nodes (nodes.py) use them too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from openfl_cli.errors import UsageError
from openfl_cli.pki import keys
from openfl_cli.pki.ca import AGGREGATOR_AUTHORITY_HINT, NODE_DAYS, issue, load_authority, role_of
from openfl_cli.pki.errors import CertificateError
from openfl_cli.pki.layout import (
    aggregator_stem,
    chain_path,
    collaborator_stem,
    signed_package_path,
    with_suffix,
)
from openfl_cli.pki.packages import (
    SignedPackage,
    read_request_package,
    read_signed_package,
    write_signed_package,
)
from openfl_cli.pki.roster import add_collaborator
from openfl_cli.pki.verify import verify_chain
from openfl_cli.utils.fs import atomic_write_bytes
from openfl_cli.utils.names import check_fqdn

# asked with the request's hash; True means "it matches what the requesting node printed"
Confirm = Callable[[str], bool]


@dataclass(frozen=True)
class Signed:
    name: str
    hash: str
    certificate: Path
    package: Path | None = None
    added_to_cols: bool = False


@dataclass(frozen=True)
class Imported:
    name: str
    certificate: Path
    chain: Path
    root_fingerprint: str


def check_request_hash(actual: str, expected: str | None, confirm: Confirm | None, source: str) -> None:
    """Refuse unless the operator's expected hash (or their confirmation) matches the request's."""
    if expected is not None:
        if keys.normalize_hash(expected) != actual:
            raise CertificateError(
                f"{source}: the request's hash {actual} does not match the expected "
                f"{keys.normalize_hash(expected)}; "
                "the request may have been altered in transit: not signing it"
            )
        return
    if confirm is not None and not confirm(actual):
        raise CertificateError(f"{source}: the operator did not confirm the request's hash; not signing it")


def certify_aggregator(
    workspace: str | Path,
    fqdn: str,
    *,
    days: int = NODE_DAYS,
    expected_hash: str | None = None,
    confirm: Confirm | None = None,
) -> Signed:
    """Sign `cert/server/agg_{FQDN}.csr` into `agg_{FQDN}.crt` (serverAuth, a SAN for the name)."""
    return certify_server(
        workspace,
        aggregator_stem(workspace, check_fqdn(fqdn)),
        fqdn,
        role="aggregator",
        request_hint=f"fx aggregator generate-cert-request --fqdn {fqdn}",
        days=days,
        expected_hash=expected_hash,
        confirm=confirm,
    )


def certify_server(
    folder: str | Path,
    stem: Path,
    fqdn: str,
    *,
    role: str,
    request_hint: str,
    unit: str | None = None,
    authority_hint: str = AGGREGATOR_AUTHORITY_HINT,
    days: int = NODE_DAYS,
    expected_hash: str | None = None,
    confirm: Confirm | None = None,
) -> Signed:
    """Sign the authority node's own request `stem.csr` into `stem.crt`: a server certificate for `fqdn`
    (serverAuth, a SAN for it), with `unit` as its role when given. `request_hint` is the command that
    makes a missing request, `authority_hint` says how to make a missing authority."""
    request_path = with_suffix(stem, ".csr")
    if not request_path.is_file():
        raise UsageError(f"{request_path} not found; run `{request_hint}` first")
    request = keys.load_request(request_path)
    if keys.common_name(request.subject) != fqdn:
        raise CertificateError(f"{request_path}: its common name is not {fqdn!r}")
    digest = keys.request_hash(request)
    check_request_hash(digest, expected_hash, confirm, str(request_path))
    authority = load_authority(folder, hint=authority_hint)
    certificate = issue(authority, request, name=fqdn, role=role, days=days, server=True, unit=unit)
    target = with_suffix(stem, ".crt")
    keys.write_pem(target, certificate)
    return Signed(fqdn, digest, target)


def certify_collaborator(
    workspace: str | Path,
    request_package: str | Path,
    *,
    days: int = NODE_DAYS,
    expected_hash: str | None = None,
    confirm: Confirm | None = None,
) -> Signed:
    """Sign a collaborator's request package (clientAuth), enroll it in `plan/cols.yaml`, and write
    `agg_to_col_{NAME}_signed_cert.zip` with the certificate and `cert_chain.crt`."""
    workspace = Path(workspace)
    authority = load_authority(workspace)  # first: a node without an authority must not prompt for nothing
    package = read_request_package(request_package)
    digest = keys.request_hash(package.request)
    check_request_hash(digest, expected_hash, confirm, str(request_package))
    certificate = issue(authority, package.request, name=package.name, role="collaborator", days=days)
    keys.write_pem(with_suffix(collaborator_stem(workspace, package.name), ".crt"), certificate)
    added = add_collaborator(workspace, package.name)
    archive = write_signed_package(
        signed_package_path(workspace, package.name), package.name, certificate, authority.chain
    )
    return Signed(
        package.name, digest, with_suffix(collaborator_stem(workspace, package.name), ".crt"), archive, added
    )


def import_certificate(workspace: str | Path, signed_package: str | Path) -> Imported:
    """Install the certificate and chain of `agg_to_col_{NAME}_signed_cert.zip` after checking that the
    certificate is for this node's key, is a client certificate for NAME, and chains to the chain.

    A chain already trusted here is never replaced by a different one: that would let whoever hands over a
    package swap the federation's authority.
    """
    workspace = Path(workspace)
    package = read_signed_package(signed_package)
    return install_certificate(
        package,
        str(signed_package),
        collaborator_stem(workspace, package.name),
        chain_path(workspace),
        what="collaborator",
        place="workspace",
        key_hint=f"fx collaborator generate-cert-request -n {package.name}",
    )


def install_certificate(
    package: SignedPackage,
    source: str,
    stem: Path,
    trusted: Path,
    *,
    what: str,
    place: str,
    key_hint: str,
    unit: str | None = None,
) -> Imported:
    """Install `package`'s client certificate as `stem.crt`, and its chain as `trusted` unless a chain is
    trusted there already, after checking that `stem.key` exists and the certificate is for it, its
    common name is the package's name, its role is `unit` (when given) and it chains to the chain.

    `what` names the node ("collaborator") and `place` its folder ("workspace") in the messages;
    `key_hint` is the command that makes the missing key.
    """
    key_path = with_suffix(stem, ".key")
    if not key_path.is_file():
        raise UsageError(
            f"{source}: is for {what} {package.name!r}, but this {place} has no key {key_path}; "
            f"run `{key_hint}` here first"
        )
    cn = keys.common_name(package.certificate.subject)
    if cn != package.name:
        raise CertificateError(f"{source}: the certificate's common name {cn!r} is not {package.name!r}")
    role = role_of(package.certificate.subject)
    if unit is not None and role != unit:
        raise CertificateError(
            f"{source}: the certificate's role (organizational unit) is {role!r}, not {unit!r}; "
            "not importing it"
        )
    key = keys.load_private_key(key_path)
    if keys.public_key_der(package.certificate.public_key()) != keys.public_key_der(key.public_key()):
        raise CertificateError(
            f"{source}: the certificate was not issued for this node's key {key_path} "
            "(it belongs to another request); not importing it"
        )
    chain = package.chain
    if trusted.is_file():
        chain = keys.load_chain(trusted)
        if keys.pem_bytes(*chain) != keys.pem_bytes(*package.chain):
            raise CertificateError(
                f"{source}: its certificate chain differs from the one this {place} already trusts "
                f"({trusted}); "
                "a package from another authority is refused (delete that file only if the federation's "
                "authority was really replaced)"
            )
    try:
        verify_chain(package.certificate, chain, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    except CertificateError as error:
        raise CertificateError(f"{source}: {error}; not importing it") from None
    certificate_path = with_suffix(stem, ".crt")
    keys.write_pem(certificate_path, package.certificate)
    if not trusted.is_file():
        atomic_write_bytes(trusted, keys.pem_bytes(*chain))
    return Imported(package.name, certificate_path, trusted, keys.fingerprint(chain[-1]))


# --- detached signatures of files (workspace images), by a node the authority certified ---------------

SIGNATURE_FORMAT = "fx-detached-signature/1"
MAX_SIGNATURE_BYTES = 64 << 10  # a certificate and a few digests: anything larger is not ours
_DIGEST = "sha384"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class FileSignature:
    """What a detached signature states about a file, and who signed it."""

    file_name: str
    size: int
    sha384: str
    signed_at: str
    signer: str  # the certificate's common name
    role: str  # its role: the organizational unit, else "aggregator" for a server certificate
    signer_fingerprint: str  # SHA-256 of the signer's certificate


def sign_file(
    path: str | Path, certificate: str | Path, key: str | Path, signature: str | Path
) -> FileSignature:
    """Write `signature`: `path`'s size and SHA-384 signed with `key`, beside `certificate` (PEM).

    The certificate must be for that key and chain to the authority of whoever verifies it
    (`verify_file`), who trusts their own `cert_chain.crt`, never a chain carried in the signature.
    """
    import base64
    import json

    from openfl_cli.pki.verify import now

    path, signature = Path(path), Path(signature)
    cert = keys.load_certificate(Path(certificate))
    private_key = keys.load_private_key(Path(key))
    if keys.public_key_der(cert.public_key()) != keys.public_key_der(private_key.public_key()):
        raise CertificateError(f"{certificate} is not the certificate of the key {key}; not signing")
    size, digest = file_digest(path)
    statement = {
        "format": SIGNATURE_FORMAT,
        "file": path.name,
        "size": size,
        _DIGEST: digest,
        "signed_at": now().strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    raw = _sign_bytes(private_key, _canonical(statement))
    document = {
        **statement,
        "signer": keys.pem_bytes(cert).decode(),
        "signature": base64.b64encode(raw).decode(),
    }
    atomic_write_bytes(signature, (json.dumps(document, indent=1) + "\n").encode())
    return _described(statement, cert)


def verify_file(
    path: str | Path,
    signature: str | Path,
    chain: list[x509.Certificate],
    *,
    revoked_fingerprints: frozenset[str] = frozenset(),
) -> FileSignature:
    """Check that `signature` was made by a certificate `chain` issued (valid, not revoked) and that it
    states `path`'s exact size and SHA-384; raise CertificateError naming what fails otherwise."""
    path, signature = Path(path), Path(signature)
    document = _read_signature(signature)
    statement = {key: document[key] for key in ("format", "file", "size", _DIGEST, "signed_at")}
    cert = keys.parse_certificate(str(document["signer"]).encode(), f"{signature}: the signer's certificate")
    try:
        verify_chain(cert, chain)
    except CertificateError as error:
        raise CertificateError(f"{signature}: the signer is not trusted here: {error}") from None
    if keys.fingerprint(cert) in revoked_fingerprints:
        raise CertificateError(
            f"{signature}: the signer's certificate ({keys.common_name(cert.subject)}) is revoked"
        )
    if not _signature_valid(cert, document["signature"], _canonical(statement)):
        raise CertificateError(f"{signature}: the signature is invalid (the signature file was altered)")
    size, digest = file_digest(path)
    if size != statement["size"] or digest != statement[_DIGEST]:
        raise CertificateError(
            f"{path} does not match its signature {signature.name} (signed: {statement['size']} bytes, "
            f"SHA-384 {str(statement[_DIGEST])[:16]}...; found: {size} bytes, SHA-384 {digest[:16]}...): "
            "it was altered after signing; do not load it"
        )
    return _described(statement, cert)


def file_digest(path: Path) -> tuple[int, str]:
    """The size and SHA-384 of a file, read in chunks (images are gigabytes)."""
    import hashlib

    digest = hashlib.new(_DIGEST)
    size = 0
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
    except FileNotFoundError:
        raise UsageError(f"{path} not found") from None
    except OSError as error:
        raise UsageError(f"{path}: cannot read it ({error})") from None
    return size, digest.hexdigest()


def _canonical(statement: dict[str, object]) -> bytes:
    import json

    return json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()


def _sign_bytes(private_key: keys.PrivateKey, message: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric import ec, padding

    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        return private_key.sign(message, ec.ECDSA(keys.SIGNATURE_HASH()))
    return private_key.sign(message, _pss(padding), keys.SIGNATURE_HASH())


def _signature_valid(cert: x509.Certificate, encoded: object, message: bytes) -> bool:
    import base64
    import binascii

    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    try:
        raw = base64.b64decode(str(encoded), validate=True)
        public_key = cert.public_key()
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(raw, message, ec.ECDSA(keys.SIGNATURE_HASH()))
        elif isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(raw, message, _pss(padding), keys.SIGNATURE_HASH())
        else:
            return False
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def _pss(padding: Any) -> Any:
    return padding.PSS(mgf=padding.MGF1(keys.SIGNATURE_HASH()), salt_length=padding.PSS.MAX_LENGTH)


def _read_signature(signature: Path) -> dict[str, Any]:
    import json

    try:
        if signature.stat().st_size > MAX_SIGNATURE_BYTES:
            raise CertificateError(
                f"{signature}: larger than {MAX_SIGNATURE_BYTES} bytes; not a signature of fx"
            )
        document = json.loads(signature.read_bytes())
    except FileNotFoundError:
        raise UsageError(f"{signature}: signature not found") from None
    except (OSError, ValueError) as error:
        raise CertificateError(f"{signature}: not a readable signature ({error})") from None
    types = {
        "format": str,
        "file": str,
        "size": int,
        _DIGEST: str,
        "signed_at": str,
        "signer": str,
        "signature": str,
    }
    if not isinstance(document, dict) or any(not isinstance(document.get(k), t) for k, t in types.items()):
        raise CertificateError(f"{signature}: not a signature of fx (expected the keys {', '.join(types)})")
    if document["format"] != SIGNATURE_FORMAT:
        raise CertificateError(f"{signature}: format {document['format']!r} is not {SIGNATURE_FORMAT!r}")
    return document


def _described(statement: dict[str, Any], cert: x509.Certificate) -> FileSignature:
    from openfl_cli.pki.verify import has_usage

    role = role_of(cert.subject) or (
        "aggregator" if has_usage(cert, ExtendedKeyUsageOID.SERVER_AUTH) else "collaborator"
    )
    return FileSignature(
        file_name=str(statement["file"]),
        size=int(statement["size"]),
        sha384=str(statement[_DIGEST]),
        signed_at=str(statement["signed_at"]),
        signer=keys.common_name(cert.subject) or cert.subject.rfc4514_string(),
        role=role,
        signer_fingerprint=keys.fingerprint(cert),
    )
