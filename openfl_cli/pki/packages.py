"""The two zips that travel between nodes, in OpenFL's layout.

- `col_{NAME}_to_agg_cert_request.zip`: `col_{NAME}.csr` only (never a key).
- `agg_to_col_{NAME}_signed_cert.zip`: `client/col_{NAME}.crt` and `cert_chain.crt`.
The entries' prefix (`col`) is a parameter: the Workflow API's nodes use `envoy` and `experimenter`
(see nodes.py). Every entry name is checked before anything is read (no absolute paths, no `..`, no links).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from openfl_cli.errors import UsageError
from openfl_cli.pki import keys
from openfl_cli.pki.errors import CertificateError
from openfl_cli.utils.archive import check_archive, read_member, write_archive
from openfl_cli.utils.names import check_collaborator_name

CHAIN_ENTRY = "cert_chain.crt"
MAX_ENTRY_BYTES = 1 << 20
COLLABORATOR_PREFIX = "col"
_SECRET_SUFFIXES = (".key", ".pem", ".p12", ".pfx")


@dataclass(frozen=True)
class RequestPackage:
    name: str
    request: x509.CertificateSigningRequest


@dataclass(frozen=True)
class SignedPackage:
    name: str
    certificate: x509.Certificate
    chain: list[x509.Certificate]
    chain_pem: bytes


def write_request_package(
    archive: Path, name: str, request: x509.CertificateSigningRequest, prefix: str = COLLABORATOR_PREFIX
) -> Path:
    entry = f"{prefix}_{check_collaborator_name(name)}.csr"
    return write_archive(archive, [(entry, keys.pem_bytes(request))])


def write_signed_package(
    archive: Path,
    name: str,
    certificate: x509.Certificate,
    chain: list[x509.Certificate],
    prefix: str = COLLABORATOR_PREFIX,
) -> Path:
    entries: list[tuple[str, Path | bytes]] = [
        (f"client/{prefix}_{check_collaborator_name(name)}.crt", keys.pem_bytes(certificate)),
        (CHAIN_ENTRY, keys.pem_bytes(*chain)),
    ]
    return write_archive(archive, entries)


def read_request_package(archive: str | Path, prefix: str = COLLABORATOR_PREFIX) -> RequestPackage:
    """The requesting node's name and its request, from a request package (entry `{prefix}_NAME.csr`)."""
    archive = Path(archive)
    files = package_entries(archive)
    secrets = [entry for entry in files if entry.lower().endswith(_SECRET_SUFFIXES)]
    if secrets:
        raise CertificateError(
            f"{archive}: holds {secrets[0]!r}, which may be a private key; a request package must carry only "
            "the request: generate a new key and request on the requesting node"
        )
    pattern = re.compile(rf"{re.escape(prefix)}_(.+)\.csr")
    found = [(entry, match.group(1)) for entry in files if (match := pattern.fullmatch(entry))]
    if len(found) != 1:
        raise UsageError(
            f"{archive}: expected exactly one entry '{prefix}_NAME.csr', found {files or 'none'}"
        )
    entry, name = found[0]
    check_collaborator_name(name)
    request = keys.parse_request(read_member(archive, entry, MAX_ENTRY_BYTES), f"{archive}:{entry}")
    cn = keys.common_name(request.subject)
    if cn != name:
        raise CertificateError(
            f"{archive}: the request's common name {cn!r} differs from its file name {entry!r}"
        )
    return RequestPackage(name, request)


def read_signed_package(archive: str | Path, prefix: str = COLLABORATOR_PREFIX) -> SignedPackage:
    """The certificate (`client/{prefix}_NAME.crt`) and chain of a signed package (not yet verified: see
    signing.install_certificate)."""
    archive = Path(archive)
    files = package_entries(archive)
    pattern = re.compile(rf"(?:client/)?{re.escape(prefix)}_(.+)\.crt")
    found = [(entry, match.group(1)) for entry in files if (match := pattern.fullmatch(entry))]
    if len(found) != 1 or CHAIN_ENTRY not in files:
        raise UsageError(
            f"{archive}: expected the entries 'client/{prefix}_NAME.crt' and '{CHAIN_ENTRY}', "
            f"found {files or 'none'}"
        )
    entry, name = found[0]
    check_collaborator_name(name)
    certificate = keys.parse_certificate(read_member(archive, entry, MAX_ENTRY_BYTES), f"{archive}:{entry}")
    chain_pem = read_member(archive, CHAIN_ENTRY, MAX_ENTRY_BYTES)
    chain = keys.parse_chain(chain_pem, f"{archive}:{CHAIN_ENTRY}")
    return SignedPackage(name, certificate, chain, chain_pem)


def package_entries(archive: Path) -> list[str]:
    """Names of the file entries, after refusing any entry that could land outside a folder."""
    if not archive.is_file():
        raise UsageError(f"{archive}: package not found")
    # the target is only a reference point for the traversal check: nothing is extracted
    members = check_archive(archive, archive.parent / f".{archive.name}.check")
    names = [member.filename for member in members if not member.is_dir()]
    return names
