"""Certificates of the Workflow API's long-lived nodes: the Director, its Envoys and the experimenters.

The same authority and the same request / sign / import steps as the TaskRunner flow (ca.py, requests.py,
signing.py), but in a plain folder (no plan workspace), and with the node's role written into the
certificate by the authority as the subject's organizational unit ("director", "envoy", "experimenter").
The role never comes from the request, so the Director can tell an envoy from an experimenter of the same
name, and an experimenter's certificate never passes as an envoy's (`certificate_role` reads it).

Layout in a node's folder F (the Director's folder holds the authority):

    F/cert/ca/...                                     root and signing CA (the Director only)
    F/cert/cert_chain.crt                             signing CA then root: what every node trusts
    F/cert/server/director_{FQDN}.{csr,key,crt}       serverAuth, SAN = the FQDN or IP, CN = the FQDN
    F/cert/client/envoy_{NAME}.{csr,key,crt}          clientAuth, CN = the envoy's name
    F/cert/client/experimenter_{NAME}.{csr,key,crt}   clientAuth, CN = the user's name
    F/{kind}_{NAME}_to_director_cert_request.zip      `{kind}_{NAME}.csr` only (never a key): to the Director
    F/director_to_{kind}_{NAME}_signed_cert.zip       `client/{kind}_{NAME}.crt` + `cert_chain.crt`: back

Keys are written with mode 0600; `kind` is "envoy" or "experimenter" for the packages.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from cryptography import x509

from openfl_cli.errors import UsageError
from openfl_cli.pki import keys
from openfl_cli.pki.ca import (
    CA_DAYS,
    NODE_DAYS,
    AuthorityCreated,
    create_authority,
    issue,
    load_authority,
    role_of,
)
from openfl_cli.pki.layout import TlsPaths, cert_dir, chain_path, with_suffix
from openfl_cli.pki.packages import (
    COLLABORATOR_PREFIX,
    package_entries,
    read_request_package,
    read_signed_package,
    write_request_package,
    write_signed_package,
)
from openfl_cli.pki.requests import RequestCreated, write_request
from openfl_cli.pki.signing import (
    Confirm,
    Imported,
    Signed,
    certify_server,
    check_request_hash,
    install_certificate,
)
from openfl_cli.utils.names import check_collaborator_name, check_fqdn

if TYPE_CHECKING:
    from openfl_cli.transport.tls import TlsMaterial

DIRECTOR = "director"
ENVOY = "envoy"
EXPERIMENTER = "experimenter"
CLIENT_KINDS = (ENVOY, EXPERIMENTER)
AUTHORITY_HINT = "run `fx director create-ca` on the director's node first"
# entry prefixes a request or signed package may carry -> the fx group that handles it
_PACKAGE_GROUPS = {COLLABORATOR_PREFIX: "collaborator", ENVOY: ENVOY, EXPERIMENTER: EXPERIMENTER}


# --- names and places -------------------------------------------------------------------------------


def check_kind(kind: str) -> str:
    if kind not in (DIRECTOR, *CLIENT_KINDS):
        raise UsageError(f"unknown node kind {kind!r}: expected {DIRECTOR}, {ENVOY} or {EXPERIMENTER}")
    return kind


def check_name(kind: str, name: str) -> str:
    """The director's FQDN, or an envoy's / experimenter's name (the collaborators' rule)."""
    if check_kind(kind) == DIRECTOR:
        return check_fqdn(name)
    try:
        return check_collaborator_name(name)
    except UsageError:
        raise UsageError(
            f"invalid {kind} name {name!r}: expected 1 to 128 letters, digits, '-', '_' or '.' "
            "(no path separators, not '.' or '..')"
        ) from None


def node_stem(folder: str | Path, kind: str, name: str) -> Path:
    """`cert/server/director_{FQDN}` or `cert/client/{kind}_{NAME}`, without a suffix."""
    side = "server" if check_kind(kind) == DIRECTOR else "client"
    return cert_dir(folder) / side / f"{kind}_{check_name(kind, name)}"


def request_package_path(folder: str | Path, kind: str, name: str) -> Path:
    return Path(folder) / f"{_client_kind(kind)}_{check_name(kind, name)}_to_director_cert_request.zip"


def signed_package_path(folder: str | Path, kind: str, name: str) -> Path:
    return Path(folder) / f"director_to_{_client_kind(kind)}_{check_name(kind, name)}_signed_cert.zip"


def node_tls_paths(folder: str | Path, kind: str, name: str) -> TlsPaths:
    """The chain, certificate and key of the director (`name` = its FQDN), an envoy or an experimenter."""
    stem = node_stem(folder, kind, name)
    return TlsPaths(chain_path(folder), with_suffix(stem, ".crt"), with_suffix(stem, ".key"))


def node_tls_material(folder: str | Path, kind: str, name: str) -> TlsMaterial:
    """The PEM bytes the transport takes (the certificate followed by the signing CA); a missing file is a
    UsageError naming it and the command that makes it."""
    from openfl_cli.pki.credentials import read_tls_material

    hint = "fx director certify" if kind == DIRECTOR else f"fx {kind} certify --import ..."
    return read_tls_material(node_tls_paths(folder, kind, name), hint)


# --- the director: the authority and its own server certificate --------------------------------------


def create_director_authority(
    folder: str | Path, *, force: bool = False, days: int = CA_DAYS
) -> AuthorityCreated:
    """`cert/ca/` and `cert/cert_chain.crt` in the director's folder (see ca.create_authority)."""
    return create_authority(folder, force=force, days=days)


def director_request(folder: str | Path, fqdn: str, *, force: bool = False) -> RequestCreated:
    """`cert/server/director_{FQDN}.csr` and `.key`: the request stays on the director's node."""
    return write_request(node_stem(folder, DIRECTOR, fqdn), fqdn, force=force)


def certify_director(
    folder: str | Path,
    fqdn: str,
    *,
    days: int = NODE_DAYS,
    expected_hash: str | None = None,
    confirm: Confirm | None = None,
) -> Signed:
    """Sign the director's own request into `director_{FQDN}.crt` (serverAuth, SAN, OU=director)."""
    return certify_server(
        folder,
        node_stem(folder, DIRECTOR, fqdn),
        fqdn,
        role=DIRECTOR,
        unit=DIRECTOR,
        request_hint=f"fx director generate-cert-request --fqdn {fqdn}",
        authority_hint=AUTHORITY_HINT,
        days=days,
        expected_hash=expected_hash,
        confirm=confirm,
    )


# --- envoys and experimenters: request, sign on the director, import ----------------------------------


def node_request(folder: str | Path, kind: str, name: str, *, force: bool = False) -> RequestCreated:
    """`cert/client/{kind}_{NAME}.csr` and `.key`, and `{kind}_{NAME}_to_director_cert_request.zip`."""
    kind = _client_kind(kind)
    created = write_request(node_stem(folder, kind, name), name, force=force)
    request = keys.load_request(created.request_path)
    package = write_request_package(request_package_path(folder, kind, name), name, request, prefix=kind)
    return RequestCreated(name, created.request_path, created.key_path, created.hash, package)


def certify_node(
    folder: str | Path,
    package: str | Path,
    kind: str,
    *,
    expected_hash: str | None = None,
    confirm: Confirm | None = None,
    days: int = NODE_DAYS,
) -> Signed:
    """On the director: sign an envoy's or experimenter's request package (clientAuth, OU=`kind`) into
    `cert/client/{kind}_{NAME}.crt` and `director_to_{kind}_{NAME}_signed_cert.zip`."""
    kind = _client_kind(kind)
    authority = load_authority(folder, hint=AUTHORITY_HINT)  # first: nothing to confirm without one
    _check_package_kind(Path(package), kind, ".csr", "--request-pkg")
    request = read_request_package(package, prefix=kind)
    digest = keys.request_hash(request.request)
    check_request_hash(digest, expected_hash, confirm, str(package))
    certificate = issue(authority, request.request, name=request.name, role=kind, server=False, unit=kind)
    target = with_suffix(node_stem(folder, kind, request.name), ".crt")
    keys.write_pem(target, certificate)
    archive = write_signed_package(
        signed_package_path(folder, kind, request.name), request.name, certificate, authority.chain, kind
    )
    return Signed(request.name, digest, target, archive)


def import_node_certificate(folder: str | Path, package: str | Path, kind: str) -> Imported:
    """On the envoy's or experimenter's node: install `director_to_{kind}_{NAME}_signed_cert.zip` after
    checking that the key for NAME is here and the certificate is for it, that its common name is NAME,
    its role `kind`, it is a client certificate and chains to the package's chain. A chain already trusted
    in `folder` is never replaced by a different one."""
    kind = _client_kind(kind)
    _check_package_kind(Path(package), kind, ".crt", "--import")
    signed = read_signed_package(package, prefix=kind)
    return install_certificate(
        signed,
        str(package),
        node_stem(folder, kind, check_name(kind, signed.name)),
        chain_path(folder),
        what=kind,
        place="folder",
        key_hint=f"fx {kind} generate-cert-request -n {signed.name}",
        unit=kind,
    )


# --- reading a peer's certificate ----------------------------------------------------------------------


def certificate_role(pem: bytes) -> str | None:
    """The role (organizational unit) our authority wrote into a PEM certificate; None if it has none,
    several, or cannot be read. For the transport, on the peer's verified certificate."""
    certificate = _parse(pem)
    return role_of(certificate.subject) if certificate is not None else None


def certificate_common_name(pem: bytes) -> str | None:
    """The common name of a PEM certificate; None if it has none, several, or cannot be read."""
    certificate = _parse(pem)
    return keys.common_name(certificate.subject) if certificate is not None else None


def _parse(pem: bytes) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(bytes(pem))
    except (ValueError, TypeError):
        return None


def _client_kind(kind: str) -> str:
    if kind not in CLIENT_KINDS:
        raise UsageError(f"unknown node kind {kind!r} for a package: expected {ENVOY} or {EXPERIMENTER}")
    return kind


def _check_package_kind(archive: Path, kind: str, suffix: str, option: str) -> None:
    """Refuse a package made for another kind of node, naming the command that handles it (the entry
    names tell the kind: `envoy_NAME.csr`, `client/experimenter_NAME.crt`, ...)."""
    for entry in package_entries(archive):
        file_name = PurePosixPath(entry).name
        if not file_name.endswith(suffix):
            continue
        for prefix, group in _PACKAGE_GROUPS.items():
            if prefix != kind and file_name.startswith(f"{prefix}_"):
                raise UsageError(
                    f"{archive}: holds {entry!r}, so it is not an {kind}'s package (expected "
                    f"'{kind}_NAME{suffix}'); it is for `fx {group} certify {option} {archive.name}`"
                )
