from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
import yaml

from openfl_cli.errors import SecurityError, UsageError
from openfl_cli.pki import keys
from openfl_cli.pki.credentials import Authorizer, peer_common_name
from openfl_cli.pki.errors import NotAuthorized
from openfl_cli.pki.revocation import remove, revoked_records
from openfl_cli.pki.roster import read_collaborators
from tests.pki.conftest import Federation, sign_custom


class FakeContext:
    """What the check reads from a grpc.ServicerContext."""

    def __init__(self, pem: bytes | None, cn: str | None = None) -> None:
        self._auth: dict[str, list[bytes]] = {}
        if pem is not None:
            self._auth["x509_pem_cert"] = [pem]
        if cn is not None:
            self._auth["x509_common_name"] = [cn.encode()]

    def auth_context(self) -> dict[str, list[bytes]]:
        return self._auth


def _pem(federation: Federation, name: str) -> bytes:
    return federation.client(name).certificate.read_bytes()


def test_accepts_enrolled_collaborators(federation: Federation) -> None:
    authorizer = Authorizer(federation.aggregator, "plan/cols.yaml")
    for name in ("one", "two"):
        authorizer.check(_pem(federation, name), name)
        authorizer.check(keys.load_certificate(federation.client(name).certificate), name)
        authorizer.check(FakeContext(_pem(federation, name), name), name)
    assert issubclass(NotAuthorized, SecurityError)


def test_refuses_without_certificate(federation: Federation) -> None:
    authorizer = Authorizer(federation.aggregator, federation.aggregator / "plan" / "cols.yaml")
    with pytest.raises(NotAuthorized, match="presented no client certificate"):
        authorizer.check(FakeContext(None), "one")


def test_refuses_a_common_name_other_than_the_sender(federation: Federation) -> None:
    authorizer = Authorizer(federation.aggregator, "plan/cols.yaml")
    with pytest.raises(NotAuthorized, match="common name 'one' does not match the sender 'two'"):
        authorizer.check(_pem(federation, "one"), "two")


def test_refuses_a_name_not_in_cols(federation: Federation) -> None:
    cols = federation.aggregator / "plan" / "cols.yaml"
    cols.write_text("collaborators: [one]\n")
    authorizer = Authorizer(federation.aggregator, cols)
    with pytest.raises(NotAuthorized, match=r"'two' is not in cols\.yaml"):
        authorizer.check(_pem(federation, "two"), "two")


def test_refuses_a_revoked_certificate_even_if_listed(federation: Federation) -> None:
    authorizer = Authorizer(federation.aggregator, "plan/cols.yaml")
    authorizer.check(_pem(federation, "two"), "two")
    removed = remove(federation.aggregator, "two")
    assert removed.removed_from_cols and len(removed.revoked) == 1
    assert read_collaborators(federation.aggregator / "plan" / "cols.yaml") == ["one"]
    assert [r.name for r in revoked_records(federation.aggregator)] == ["two"]
    # taken effect on the running authorizer, without rebuilding it
    with pytest.raises(NotAuthorized, match="has been revoked"):
        authorizer.check(_pem(federation, "two"), "two")
    # listed again by hand: the certificate stays revoked
    (federation.aggregator / "plan" / "cols.yaml").write_text("collaborators: [one, two]\n")
    with pytest.raises(NotAuthorized, match="has been revoked"):
        authorizer.check(_pem(federation, "two"), "two")
    authorizer.check(_pem(federation, "one"), "one")


def test_reload_on_same_size_rewrite(federation: Federation) -> None:
    cols = federation.aggregator / "plan" / "cols.yaml"
    authorizer = Authorizer(federation.aggregator, cols)
    authorizer.check(_pem(federation, "one"), "one")
    stat = cols.stat()
    cols.write_text(cols.read_text().replace("one", "xxx"))  # same size, in place
    os.utime(cols, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    with pytest.raises(NotAuthorized, match=r"not in cols\.yaml"):
        authorizer.check(_pem(federation, "one"), "one")


def test_unreadable_cols_refuses_every_call(federation: Federation) -> None:
    cols = federation.aggregator / "plan" / "cols.yaml"
    authorizer = Authorizer(federation.aggregator, cols)
    cols.write_text("collaborators: [one, ../two]\n")
    with pytest.raises(NotAuthorized, match="cannot be read"):
        authorizer.check(_pem(federation, "one"), "one")


def test_refuses_foreign_and_expired_raw_certificates(federation: Federation, foreign: Federation) -> None:
    authorizer = Authorizer(federation.aggregator, "plan/cols.yaml")
    with pytest.raises(NotAuthorized, match="not issued by this federation's authority"):
        authorizer.check(foreign.client("one").certificate.read_bytes(), "one")
    key = keys.load_private_key(federation.client("one").private_key)
    now = dt.datetime.now(dt.timezone.utc)
    expired = sign_custom(
        federation.authority,
        key.public_key(),
        "one",
        not_before=now - dt.timedelta(days=30),
        not_after=now - dt.timedelta(days=1),
    )
    with pytest.raises(NotAuthorized, match="expired"):
        authorizer.check(keys.pem_bytes(expired), "one")


def test_refuses_the_aggregator_certificate_as_a_client(federation: Federation) -> None:
    authorizer = Authorizer(federation.aggregator, "plan/cols.yaml")
    with pytest.raises(NotAuthorized, match="not a TLS client certificate"):
        authorizer.check(federation.server.certificate.read_bytes(), "localhost")


def test_remove_unknown_collaborator(federation: Federation) -> None:
    with pytest.raises(UsageError, match="not a collaborator"):
        remove(federation.aggregator, "nobody")
    with pytest.raises(UsageError, match="invalid collaborator name"):
        remove(federation.aggregator, "../one")
    remove(federation.aggregator, "one")
    again = remove(federation.aggregator, "one")  # idempotent: nothing new to revoke
    assert not again.removed_from_cols and again.revoked == []
    document = yaml.safe_load((federation.aggregator / "cert" / "revoked.yaml").read_text())
    assert [entry["name"] for entry in document["revoked"]] == ["one"]


def test_peer_common_name(federation: Federation) -> None:
    pem = _pem(federation, "one")
    assert peer_common_name(FakeContext(pem, "one")) == "one"  # type: ignore[arg-type]
    assert peer_common_name(FakeContext(pem)) == "one"  # type: ignore[arg-type]
    assert peer_common_name(FakeContext(None)) is None  # type: ignore[arg-type]


def test_check_is_cheap(federation: Federation) -> None:
    import time

    authorizer = Authorizer(federation.aggregator, "plan/cols.yaml")
    context = FakeContext(_pem(federation, "one"))
    start = time.perf_counter()
    for _ in range(2000):
        authorizer.check(context, "one")
    assert (time.perf_counter() - start) / 2000 < 0.0005


def test_missing_paths_give_a_hint(tmp_path: Path) -> None:
    from openfl_cli.pki.credentials import server_credentials
    from openfl_cli.pki.layout import aggregator_tls_paths

    with pytest.raises(UsageError, match="fx aggregator certify"):
        server_credentials(aggregator_tls_paths(tmp_path, "localhost"))
