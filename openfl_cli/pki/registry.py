"""The authority's record of what it issued (`cert/ca/index.yaml`) and the revocation list
(`cert/revoked.yaml`).

Both are small YAML files rewritten atomically, read with `load_yaml_text` (safe, bounded) only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from openfl_cli.errors import UsageError
from openfl_cli.utils.fs import atomic_write_text, updating
from openfl_cli.utils.safe_yaml import load_yaml_text


@dataclass(frozen=True)
class CertificateRecord:
    """One issued (or revoked) certificate: who, which role, and how to recognize it."""

    name: str
    role: str  # "aggregator" | "collaborator"
    serial: str  # hex
    fingerprint: str  # SHA-256 of the DER, hex
    not_after: str  # ISO 8601, UTC
    when: str  # issued at (index) or revoked at (revocation list), ISO 8601, UTC

    @classmethod
    def from_mapping(cls, item: Any, source: Path) -> CertificateRecord:
        fields = ("name", "role", "serial", "fingerprint", "not_after", "when")
        if not isinstance(item, dict) or not all(isinstance(item.get(key), str) for key in fields):
            raise UsageError(f"{source}: malformed entry {item!r}; expected the keys {', '.join(fields)}")
        return cls(**{key: item[key] for key in fields})


def timestamp(moment: dt.datetime | None = None) -> str:
    return (moment or dt.datetime.now(dt.timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_records(path: Path, key: str) -> list[CertificateRecord]:
    """The list under `key` in `path`; a missing file is an empty list."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"{path}: cannot read ({error})") from None
    document = load_yaml_text(text, str(path))
    if document is None:
        return []
    if not isinstance(document, dict) or not isinstance(document.get(key, []), list):
        raise UsageError(f"{path}: expected a mapping with a list under {key!r}")
    return [CertificateRecord.from_mapping(item, path) for item in document.get(key) or []]


def write_records(path: Path, key: str, records: list[CertificateRecord]) -> None:
    text = yaml.safe_dump({key: [asdict(record) for record in records]}, sort_keys=False)
    atomic_write_text(path, text)


def append_record(path: Path, key: str, record: CertificateRecord) -> None:
    with updating(path):
        write_records(path, key, [*read_records(path, key), record])


ISSUED = "issued"
REVOKED = "revoked"
