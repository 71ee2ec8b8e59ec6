"""`fx collaborator remove`: unenroll a collaborator and revoke every certificate issued to it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from openfl_cli.errors import UsageError
from openfl_cli.pki.layout import authority_paths, cols_path, revocation_path
from openfl_cli.pki.registry import ISSUED, REVOKED, CertificateRecord, read_records, timestamp, write_records
from openfl_cli.pki.roster import read_collaborators, remove_collaborator
from openfl_cli.utils.fs import updating
from openfl_cli.utils.names import check_collaborator_name


@dataclass(frozen=True)
class Removed:
    name: str
    removed_from_cols: bool
    revoked: list[CertificateRecord]


def remove(workspace: str | Path, name: str) -> Removed:
    """Take `name` out of `plan/cols.yaml` and add its certificates to `cert/revoked.yaml`.

    The aggregator's per-call check re-reads both files when they change, so a running aggregator
    refuses the collaborator from its next call on, even though its certificate is still valid.
    """
    workspace = Path(workspace)
    check_collaborator_name(name)
    revoked_file = revocation_path(workspace)
    with updating(revoked_file):
        revoked = read_records(revoked_file, REVOKED)
        already = {record.fingerprint for record in revoked}
        issued = read_records(authority_paths(workspace).index, ISSUED)
        new = [
            CertificateRecord(r.name, r.role, r.serial, r.fingerprint, r.not_after, timestamp())
            for r in issued
            if r.name == name and r.role == "collaborator" and r.fingerprint not in already
        ]
        enrolled = name in read_collaborators(cols_path(workspace))
        if not enrolled and not any(r.name == name and r.role == "collaborator" for r in issued):
            raise UsageError(
                f"{name!r} is not a collaborator of this federation (not in plan/cols.yaml, never certified)"
            )
        if new:  # revoke first: a crash in between leaves it revoked but listed, never unrevoked
            write_records(revoked_file, REVOKED, [*revoked, *new])
        removed = remove_collaborator(workspace, name)
    return Removed(name, removed, new)


def revoked_records(workspace: str | Path) -> list[CertificateRecord]:
    return read_records(revocation_path(workspace), REVOKED)
