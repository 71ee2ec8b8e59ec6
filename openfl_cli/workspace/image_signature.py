"""Signing a saved workspace image and checking a received one against the federation's authority.

The signer is a node the authority certified (by default this workspace's aggregator); whoever
receives the tarball checks it against their own `cert/cert_chain.crt` and revocation list, so a
tarball changed after signing, or signed by anyone outside the federation, is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from openfl_cli.errors import UsageError
from openfl_cli.workspace.layout import require_workspace

if TYPE_CHECKING:
    from openfl_cli.pki.signing import FileSignature

SIGNATURE_SUFFIX = ".sig"


@dataclass(frozen=True)
class Signer:
    certificate: Path
    key: Path


def signature_path(tarball: Path) -> Path:
    """`X.tar.sig` beside `X.tar`."""
    return tarball.with_name(tarball.name + SIGNATURE_SUFFIX)


def default_signer(workspace: Path) -> Signer:
    """This node's certificate with its key: the aggregator's, else the one collaborator's."""
    cert = workspace / "cert"
    for folder, what in ((cert / "server", "aggregator"), (cert / "client", "collaborator")):
        pairs = [
            Signer(crt, crt.with_name(crt.name[: -len(".crt")] + ".key"))
            for crt in sorted(folder.glob("*.crt"))
            if crt.with_name(crt.name[: -len(".crt")] + ".key").is_file()
        ]
        if len(pairs) == 1:
            return pairs[0]
        if len(pairs) > 1:
            names = ", ".join(pair.certificate.name for pair in pairs)
            raise UsageError(
                f"{folder} holds several {what} certificates ({names}); choose one with --certificate"
            )
    raise UsageError(
        f"{workspace} has no certified key to sign with (cert/server/agg_*.crt or cert/client/col_*.crt "
        "beside its .key); run `fx aggregator certify` first, or pass --certificate and --key"
    )


def sign_image(
    tarball: str | Path,
    workspace: str | Path = ".",
    *,
    certificate: str | Path | None = None,
    key: str | Path | None = None,
) -> tuple[Path, FileSignature]:
    """Write `X.tar.sig` for `tarball`; return its path and what it states (a FileSignature)."""
    from openfl_cli.pki.signing import sign_file

    root = require_workspace(workspace)
    tar = Path(tarball).expanduser().absolute()
    if certificate is None:
        signer = default_signer(root)
    else:
        cert = Path(certificate)
        signer = Signer(cert, Path(key) if key else cert.with_name(cert.name.removesuffix(".crt") + ".key"))
    target = signature_path(tar)
    return target, sign_file(tar, signer.certificate, signer.key, target)


def verify_image(
    tarball: str | Path,
    workspace: str | Path = ".",
    *,
    signature: str | Path | None = None,
    chain: str | Path | None = None,
) -> FileSignature:
    """Check `tarball` against its signature and this workspace's authority; return the FileSignature."""
    from openfl_cli.pki import keys
    from openfl_cli.pki.layout import chain_path
    from openfl_cli.pki.revocation import revoked_records
    from openfl_cli.pki.signing import verify_file

    root = require_workspace(workspace)
    tar = Path(tarball).expanduser().absolute()
    trusted = Path(chain) if chain else chain_path(root)
    if not trusted.is_file():
        raise UsageError(
            f"{trusted} not found: the federation's certificate chain is needed to check the image "
            "(a collaborator has it after `fx collaborator certify --import`)"
        )
    revoked = frozenset(record.fingerprint for record in revoked_records(root))
    return verify_file(
        tar,
        Path(signature) if signature else signature_path(tar),
        keys.load_chain(trusted),
        revoked_fingerprints=revoked,
    )
