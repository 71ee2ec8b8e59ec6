"""Certificate signing requests: a new key pair per node, the request, and the request's hash to compare."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from openfl_cli.errors import UsageError
from openfl_cli.pki import keys
from openfl_cli.pki.layout import aggregator_stem, collaborator_stem, request_package_path, with_suffix
from openfl_cli.pki.packages import write_request_package
from openfl_cli.utils.names import check_collaborator_name, check_fqdn


@dataclass(frozen=True)
class RequestCreated:
    name: str
    request_path: Path
    key_path: Path
    hash: str
    package: Path | None = None


def new_request(common_name: str) -> tuple[keys.PrivateKey, x509.CertificateSigningRequest]:
    key = keys.new_private_key()
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .sign(key, keys.SIGNATURE_HASH())
    )
    return key, request


def aggregator_request(workspace: str | Path, fqdn: str, *, force: bool = False) -> RequestCreated:
    """`cert/server/agg_{FQDN}.csr` and `.key`."""
    stem = aggregator_stem(workspace, check_fqdn(fqdn))
    return write_request(stem, fqdn, force=force)


def collaborator_request(workspace: str | Path, name: str, *, force: bool = False) -> RequestCreated:
    """`cert/client/col_{NAME}.csr` and `.key`, and `col_{NAME}_to_agg_cert_request.zip` (no key)."""
    stem = collaborator_stem(workspace, check_collaborator_name(name))
    created = write_request(stem, name, force=force)
    request = keys.load_request(created.request_path)
    package = write_request_package(request_package_path(workspace, name), name, request)
    return RequestCreated(name, created.request_path, created.key_path, created.hash, package)


def write_request(stem: Path, common_name: str, *, force: bool = False) -> RequestCreated:
    """A new key (`stem.key`, 0600) and its request (`stem.csr`) for `common_name`; with `force`, replace
    an existing pair and drop the certificate of the old key."""
    key_path, request_path = with_suffix(stem, ".key"), with_suffix(stem, ".csr")
    if key_path.exists() and not force:
        raise UsageError(
            f"{key_path} already exists; use --force to make a new key and request "
            "(the certificate signed for the old key stops working here)"
        )
    key, request = new_request(common_name)
    keys.write_key(key_path, key)
    keys.write_pem(request_path, request)
    stale = with_suffix(stem, ".crt")
    if force and stale.exists():
        stale.unlink()  # it belongs to the replaced key
    return RequestCreated(common_name, request_path, key_path, keys.request_hash(request))
