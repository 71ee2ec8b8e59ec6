"""Concurrent `fx` commands updating the same registry file do not lose each other's change."""

from __future__ import annotations

import threading
from pathlib import Path

from openfl_cli.pki.registry import ISSUED, CertificateRecord, append_record, read_records
from openfl_cli.pki.roster import add_collaborator, read_collaborators

WRITERS = 12


def record(index: int) -> CertificateRecord:
    return CertificateRecord(f"c{index}", "collaborator", f"{index:x}", f"{index:064x}", "2030-01-01", "now")


def all_at_once(work: list[threading.Thread]) -> None:
    for thread in work:
        thread.start()
    for thread in work:
        thread.join()


def test_concurrent_appends_to_the_index_keep_every_record(tmp_path: Path) -> None:
    index = tmp_path / "cert" / "ca" / "index.yaml"
    start = threading.Barrier(WRITERS)

    def issue(number: int) -> None:
        start.wait()
        append_record(index, ISSUED, record(number))

    all_at_once([threading.Thread(target=issue, args=(n,)) for n in range(WRITERS)])
    assert sorted(r.name for r in read_records(index, ISSUED)) == sorted(f"c{n}" for n in range(WRITERS))


def test_concurrent_enrollments_keep_every_collaborator(tmp_path: Path) -> None:
    (tmp_path / "plan").mkdir()
    start = threading.Barrier(WRITERS)

    def enroll(number: int) -> None:
        start.wait()
        assert add_collaborator(tmp_path, f"c{number}")

    all_at_once([threading.Thread(target=enroll, args=(n,)) for n in range(WRITERS)])
    names = read_collaborators(tmp_path / "plan" / "cols.yaml")
    assert sorted(names) == sorted(f"c{n}" for n in range(WRITERS))


def test_the_lock_file_is_hidden_beside_the_file(tmp_path: Path) -> None:
    index = tmp_path / "index.yaml"
    for n in range(3):
        append_record(index, ISSUED, record(n))
    assert sorted(p.name for p in tmp_path.iterdir()) == [".index.yaml.lock", "index.yaml"]
