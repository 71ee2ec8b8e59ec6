from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from openfl_cli.errors import UsageError
from openfl_cli.pki import keys
from openfl_cli.pki.ca import create_authority
from openfl_cli.pki.layout import authority_paths, chain_path
from openfl_cli.pki.verify import is_ca
from tests.pki.conftest import make_workspace


def test_authority_files_modes_and_chain_order(tmp_path: Path) -> None:
    workspace = make_workspace(tmp_path / "ws")
    created = create_authority(workspace)
    paths = authority_paths(workspace)
    for key in (paths.root_key, paths.signing_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
        assert key.parent.name == "private"
    chain = keys.load_chain(chain_path(workspace))
    signing, root = keys.load_certificate(paths.signing_cert), keys.load_certificate(paths.root_cert)
    assert chain == [signing, root]
    assert created.root_fingerprint == keys.fingerprint(root)
    assert is_ca(root) and is_ca(signing)
    signing.verify_directly_issued_by(root)
    root.verify_directly_issued_by(root)
    constraints = signing.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.path_length == 0
    assert isinstance(root.signature_hash_algorithm, hashes.SHA384)
    assert isinstance(root.public_key(), ec.EllipticCurvePublicKey)
    assert root.public_key().curve.name == "secp384r1"  # type: ignore[union-attr]


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    workspace = make_workspace(tmp_path / "ws")
    first = create_authority(workspace)
    with pytest.raises(UsageError, match="already holds a certificate authority; use --force"):
        create_authority(workspace)
    second = create_authority(workspace, force=True)
    assert second.root_fingerprint != first.root_fingerprint


def test_each_authority_is_distinct(tmp_path: Path) -> None:
    one = create_authority(make_workspace(tmp_path / "a"))
    two = create_authority(make_workspace(tmp_path / "b"))
    assert one.root_fingerprint != two.root_fingerprint


@pytest.mark.parametrize("days", [0, -1, 40000])
def test_rejects_bad_validity(tmp_path: Path, days: int) -> None:
    with pytest.raises(UsageError, match="invalid validity"):
        create_authority(make_workspace(tmp_path / "ws"), days=days)
