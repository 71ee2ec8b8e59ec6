"""What the gRPC layer gets from the PKI: TLS material read from a node's PEM files, and the per-call
authorization check.

The transport builds credentials from `TlsMaterial` (PEM bytes) and reads the peer's name itself; the
functions here add what only the PKI knows: where the files are, the fx command that makes a missing
one, and who may call (the roster and the revocation list).
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from openfl_cli.errors import FxError, UsageError
from openfl_cli.pki import keys
from openfl_cli.pki.errors import NotAuthorized
from openfl_cli.pki.layout import TlsPaths, chain_path, revocation_path
from openfl_cli.pki.registry import REVOKED, read_records
from openfl_cli.pki.verify import has_usage, verify_chain
from openfl_cli.transport.tls import PEM_CERT_PROPERTY, TlsMaterial, channel_credentials
from openfl_cli.transport.tls import peer_common_name as peer_common_name
from openfl_cli.transport.tls import server_credentials as _server_credentials

if TYPE_CHECKING:
    import grpc

log = logging.getLogger(__name__)

AGGREGATOR_HINT = "fx aggregator certify"
COLLABORATOR_HINT = "fx collaborator certify --import ..."
_CACHE_SIZE = 1024


def aggregator_material(paths: TlsPaths) -> TlsMaterial:
    """The aggregator's chain, certificate (followed by the signing CA) and key, as PEM bytes."""
    return read_tls_material(paths, AGGREGATOR_HINT)


def collaborator_material(paths: TlsPaths, with_client_cert: bool = True) -> TlsMaterial:
    """A collaborator's chain and, with `with_client_cert`, its certificate and key."""
    return read_tls_material(paths, COLLABORATOR_HINT, with_identity=with_client_cert)


def read_tls_material(paths: TlsPaths, hint: str, *, with_identity: bool = True) -> TlsMaterial:
    """The PEM files of one node; a missing or unreadable file is a UsageError naming it (and `hint`,
    the command that makes it)."""
    if not with_identity:
        return _material(paths, _read(paths.cert_chain, "certificate chain", ""))
    key = _read(paths.private_key, "private key", hint)
    certificate = _read(paths.certificate, "certificate", hint)
    chain = _read(paths.cert_chain, "certificate chain", hint)
    intermediate = keys.parse_chain(chain, str(paths.cert_chain))[:1]
    return _material(paths, chain, certificate + keys.pem_bytes(*intermediate), key)


def server_credentials(paths: TlsPaths, require_client_auth: bool = True) -> grpc.ServerCredentials:
    """gRPC credentials of the aggregator at `paths` (see `aggregator_material`)."""
    return _server_credentials(aggregator_material(paths), require_client_auth)


def client_credentials(paths: TlsPaths, with_client_cert: bool = True) -> grpc.ChannelCredentials:
    """gRPC credentials of the collaborator at `paths` (see `collaborator_material`)."""
    return channel_credentials(collaborator_material(paths, with_client_cert), with_client_cert)


@dataclass(frozen=True)
class _Peer:
    common_name: str | None
    serial: str
    fingerprint: str
    client_auth: bool


_RAW_TYPES = (bytes, bytearray, memoryview, str, x509.Certificate)
PeerSource = Any  # a grpc.ServicerContext, an x509.Certificate, or a certificate as PEM/DER bytes or str


class Authorizer:
    """Decides on every call whether a peer may speak for `claimed_sender`.

    It checks that the peer presented a certificate, that it is a client certificate whose common name is
    the sender, that the certificate is not revoked (`cert/revoked.yaml`) and that the sender is in
    `plan/cols.yaml`. Both files are re-read when they change on disk (a stat per call), so
    `fx collaborator remove` takes effect on a running aggregator. A problem reading them refuses every call.
    """

    def __init__(self, workspace: str | Path, cols_path: str | Path) -> None:
        self.workspace = Path(workspace)
        cols = Path(cols_path)
        self.cols_path = cols if cols.is_absolute() else self.workspace / cols
        self.revocation_path = revocation_path(self.workspace)
        self._lock = threading.Lock()
        self._stamps: dict[Path, tuple[int, int, int] | None] = {}
        self._collaborators: frozenset[str] = frozenset()
        self._revoked_fingerprints: frozenset[str] = frozenset()
        self._revoked_serials: frozenset[str] = frozenset()
        self._broken: str | None = None
        self._peers: OrderedDict[bytes, _Peer] = OrderedDict()
        self._refresh()

    def check(self, context: PeerSource, claimed_sender: str) -> None:
        """Raise NotAuthorized(reason) unless the peer may act as `claimed_sender`.

        `context` is a gRPC servicer context (its certificate was verified in the handshake), or a raw
        certificate (PEM/DER bytes, str or x509.Certificate), which is then also verified against
        `cert/cert_chain.crt`.
        """
        raw = _certificate_bytes(context)
        if raw is None:
            raise NotAuthorized(f"the peer claiming to be {claimed_sender!r} presented no client certificate")
        peer = self._peer(raw)
        if isinstance(context, _RAW_TYPES):
            self._verify_raw(raw)  # a gRPC peer's certificate was verified in the handshake already
        if not peer.client_auth:
            raise NotAuthorized(f"the certificate of {peer.common_name!r} is not a TLS client certificate")
        if peer.common_name != claimed_sender:
            raise NotAuthorized(
                f"certificate common name {peer.common_name!r} does not match the sender {claimed_sender!r}"
            )
        self._refresh()
        with self._lock:
            broken, collaborators = self._broken, self._collaborators
            revoked = peer.fingerprint in self._revoked_fingerprints or peer.serial in self._revoked_serials
        if broken:
            raise NotAuthorized(broken)
        if revoked:
            raise NotAuthorized(
                f"the certificate of {claimed_sender!r} (serial {peer.serial}) has been revoked"
            )
        if claimed_sender not in collaborators:
            raise NotAuthorized(f"{claimed_sender!r} is not in {self.cols_path.name} of this federation")

    def members(self) -> frozenset[str] | None:
        """The collaborators of `plan/cols.yaml` as it is now; None while it cannot be read."""
        self._refresh()
        with self._lock:
            return None if self._broken else self._collaborators

    def _peer(self, raw: bytes) -> _Peer:
        with self._lock:
            peer = self._peers.get(raw)
            if peer is not None:
                self._peers.move_to_end(raw)
                return peer
        try:
            cert = keys.parse_certificate(raw, "peer certificate")
        except FxError as error:
            raise NotAuthorized(str(error)) from None
        peer = _Peer(
            common_name=keys.common_name(cert.subject),
            serial=keys.serial_hex(cert),
            fingerprint=keys.fingerprint(cert),
            client_auth=has_usage(cert, ExtendedKeyUsageOID.CLIENT_AUTH),
        )
        with self._lock:
            self._peers[raw] = peer
            if len(self._peers) > _CACHE_SIZE:
                self._peers.popitem(last=False)
        return peer

    def _verify_raw(self, raw: bytes) -> None:
        try:
            chain = keys.load_chain(chain_path(self.workspace))
            verify_chain(keys.parse_certificate(raw, "peer certificate"), chain)
        except FxError as error:
            raise NotAuthorized(str(error)) from None

    def _refresh(self) -> None:
        """Re-read cols.yaml and the revocation list if either changed since the last read."""
        cols_stamp, revoked_stamp = _stamp(self.cols_path), _stamp(self.revocation_path)
        with self._lock:
            if (
                self._stamps.get(self.cols_path, -1) == cols_stamp
                and self._stamps.get(self.revocation_path, -1) == revoked_stamp
            ):
                return
        try:
            from openfl_cli.pki.roster import read_collaborators

            collaborators = frozenset(read_collaborators(self.cols_path))
            records = read_records(self.revocation_path, REVOKED)
            broken = None
        except (FxError, OSError) as error:
            log.error("refusing every call until this is fixed: %s", error)
            collaborators, records, broken = (
                frozenset(),
                [],
                f"the authorization files cannot be read: {error}",
            )
        with self._lock:
            self._collaborators = collaborators
            self._revoked_fingerprints = frozenset(record.fingerprint for record in records)
            self._revoked_serials = frozenset(record.serial for record in records)
            self._broken = broken
            self._stamps = {self.cols_path: cols_stamp, self.revocation_path: revoked_stamp}


def _certificate_bytes(source: PeerSource) -> bytes | None:
    if isinstance(source, x509.Certificate):
        return source.public_bytes(serialization.Encoding.DER)
    if isinstance(source, str):
        return source.encode("ascii", "replace")
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    auth = source.auth_context() or {}
    values = auth.get(PEM_CERT_PROPERTY) or []
    return bytes(values[0]) if values else None


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """Changes whenever the file is rewritten (atomic writes replace the inode, even within a tick)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return (info.st_mtime_ns, info.st_size, info.st_ino)


def _material(
    paths: TlsPaths, chain: bytes, certificate: bytes | None = None, key: bytes | None = None
) -> TlsMaterial:
    try:
        return TlsMaterial(chain, certificate, key)
    except ValueError as error:
        files = ", ".join(str(path) for path in (paths.cert_chain, paths.certificate, paths.private_key))
        raise UsageError(f"{files}: not usable for TLS ({error})") from None


def _read(path: Path, what: str, hint: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{path}: {what} not found" + (f"; run `{hint}` first" if hint else "")) from None
    except OSError as error:
        raise UsageError(f"{path}: cannot read the {what} ({error})") from None
