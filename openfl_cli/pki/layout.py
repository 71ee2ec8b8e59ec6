"""Where every certificate file of a workspace lives (the file names of the TaskRunner API document)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from openfl_cli.utils.names import check_collaborator_name, check_fqdn

CERT_DIR = "cert"
CHAIN_NAME = "cert_chain.crt"


@dataclass(frozen=True)
class TlsPaths:
    """What one node needs for mutual TLS: the authority's chain, its certificate and its key."""

    cert_chain: Path
    certificate: Path
    private_key: Path


@dataclass(frozen=True)
class AuthorityPaths:
    """The two-level authority under `cert/ca/`: a root that only signs the signing CA, which signs nodes."""

    folder: Path
    root_cert: Path
    root_key: Path
    signing_cert: Path
    signing_key: Path
    index: Path

    @property
    def private_dirs(self) -> tuple[Path, Path]:
        return self.root_key.parent, self.signing_key.parent


def cert_dir(workspace: str | Path) -> Path:
    return Path(workspace) / CERT_DIR


def chain_path(workspace: str | Path) -> Path:
    return cert_dir(workspace) / CHAIN_NAME


def revocation_path(workspace: str | Path) -> Path:
    """The revocation list the aggregator's per-call check reads."""
    return cert_dir(workspace) / "revoked.yaml"


def authority_paths(workspace: str | Path) -> AuthorityPaths:
    ca = cert_dir(workspace) / "ca"
    return AuthorityPaths(
        folder=ca,
        root_cert=ca / "root-ca.crt",
        root_key=ca / "root-ca" / "private" / "root-ca.key",
        signing_cert=ca / "signing-ca.crt",
        signing_key=ca / "signing-ca" / "private" / "signing-ca.key",
        index=ca / "index.yaml",
    )


def aggregator_stem(workspace: str | Path, fqdn: str) -> Path:
    """`cert/server/agg_{FQDN}` without a suffix (`.csr`, `.key`, `.crt` are added)."""
    return cert_dir(workspace) / "server" / f"agg_{check_fqdn(fqdn)}"


def collaborator_stem(workspace: str | Path, name: str) -> Path:
    """`cert/client/col_{NAME}` without a suffix."""
    return cert_dir(workspace) / "client" / f"col_{check_collaborator_name(name)}"


def with_suffix(stem: Path, suffix: str) -> Path:
    """`stem` + `suffix`; unlike Path.with_suffix it keeps the dots of an FQDN (`agg_a.b.com.crt`)."""
    return stem.parent / f"{stem.name}{suffix}"


def aggregator_tls_paths(workspace: str | Path, fqdn: str) -> TlsPaths:
    stem = aggregator_stem(workspace, fqdn)
    return TlsPaths(chain_path(workspace), with_suffix(stem, ".crt"), with_suffix(stem, ".key"))


def collaborator_tls_paths(workspace: str | Path, name: str) -> TlsPaths:
    stem = collaborator_stem(workspace, name)
    return TlsPaths(chain_path(workspace), with_suffix(stem, ".crt"), with_suffix(stem, ".key"))


def request_package_path(workspace: str | Path, name: str) -> Path:
    """`col_{NAME}_to_agg_cert_request.zip` in the collaborator's workspace."""
    return Path(workspace) / f"col_{check_collaborator_name(name)}_to_agg_cert_request.zip"


def signed_package_path(workspace: str | Path, name: str) -> Path:
    """`agg_to_col_{NAME}_signed_cert.zip` in the aggregator's workspace."""
    return Path(workspace) / f"agg_to_col_{check_collaborator_name(name)}_signed_cert.zip"


def cols_path(workspace: str | Path) -> Path:
    return Path(workspace) / "plan" / "cols.yaml"


def data_path(workspace: str | Path) -> Path:
    return Path(workspace) / "plan" / "data.yaml"


def require_workspace(folder: str | Path) -> Path:
    """`folder` made absolute, if it holds `plan/plan.yaml` (certificate commands run inside a workspace)."""
    from openfl_cli.errors import UsageError

    workspace = Path(folder).expanduser().absolute()
    if not (workspace / "plan" / "plan.yaml").is_file():
        raise UsageError(f"{workspace} is not a workspace (no plan/plan.yaml); run this inside a workspace")
    return workspace
