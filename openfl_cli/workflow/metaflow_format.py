"""Metaflow's local datastore, written directly in the on-disk format its client reads.

Nothing here imports Metaflow: a checkpoint is written where Metaflow is not installed, and no Metaflow
internals can change under it. The format is Metaflow's promise to read old runs; the contract test
(tests/workflow/test_checkpoint.py) reads what this writes with the real client of the newest release.

Layout under ROOT (a `.metaflow` directory), attempt 0 only:

    FLOW/_meta/_self.json                           the flow
    FLOW/RUN/_meta/_self.json                       the run; its system tags hold the user (the namespace)
    FLOW/RUN/STEP/_meta/_self.json                  a step; its created_at is its first task's
    FLOW/RUN/STEP/TASK/_meta/_self.json             a task; the client lists children newest first
    FLOW/RUN/STEP/TASK/_meta/0_artifact_NAME.json   one per artifact: its blob key and where the store is
    FLOW/RUN/STEP/TASK/_meta/sysmeta_FIELD_TS.json  task metadata (attempt, ds-type, ds-root, ...)
    FLOW/RUN/STEP/TASK/0.data.json                  the artifact index: name -> key, type, encoding
    FLOW/RUN/STEP/TASK/0.task_stdout.log            the output, one mflog line per line (and stderr)
    FLOW/RUN/STEP/TASK/0.attempt.json, 0.DONE.lock  the attempt began, and ended
    FLOW/data/KEY[:2]/KEY, KEY_meta                 content-addressed blobs: raw pickles, key = SHA-1
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

from openfl_cli.utils.fs import PRIVATE_MODE, atomic_writer

DATASTORE_DIR = ".metaflow"
SYSROOT_VARIABLE = "METAFLOW_DATASTORE_SYSROOT_LOCAL"
# Metaflow's pickle serializer claims these encodings and loads them with pickle.loads, which reads
# any protocol; "v4" names the family, not the exact protocol of the bytes.
ENCODING = "pickle-v4"


def datastore_root(cwd: Path | None = None) -> Path:
    """Where Metaflow's client looks: $METAFLOW_DATASTORE_SYSROOT_LOCAL/.metaflow, else the nearest
    `.metaflow` in the working directory or above it, else a new one in the working directory."""
    sysroot = os.environ.get(SYSROOT_VARIABLE)
    if sysroot:
        return Path(sysroot).resolve() / DATASTORE_DIR
    here = (cwd or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / DATASTORE_DIR).is_dir():
            return folder / DATASTORE_DIR
    return here / DATASTORE_DIR


def identity() -> str | None:
    """The namespace Metaflow's client reads by default (`production:TOKEN` or `user:NAME`), found the
    way Metaflow finds it; None where it finds none (root without METAFLOW_USER)."""
    token = os.environ.get("METAFLOW_PRODUCTION_TOKEN")
    if token:
        return f"production:{token}"
    for variable in ("METAFLOW_USER", "SUDO_USER", "USERNAME", "USER"):
        user = os.environ.get(variable)
        if user and user != "root":
            return f"user:{user}"
    return None


@dataclass(frozen=True)
class RunTags:
    user: str | None
    system: tuple[str, ...]


def run_tags(extra: Iterable[str] = ()) -> RunTags:
    namespace = identity()
    system = [namespace] if namespace else []
    system += [f"python_version:{sys.version.split()[0]}", "runtime:fx", *extra]
    user = namespace.split(":", 1)[1] if namespace and namespace.startswith("user:") else None
    return RunTags(user, tuple(system))


@dataclass
class TaskFiles:
    """One task as the format stores it."""

    step: str
    task_id: str
    created_ms: int
    finished_ms: int
    objects: Mapping[str, str]  # artifact name -> the key of its blob (written before the task)
    types: Mapping[str, str]  # name -> the value's type, as Metaflow shows it ("<class 'int'>")
    stdout: str = ""
    stderr: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)  # extra task metadata, e.g. participant
    ok: bool = True  # the step ended without raising


class LocalDatastore:
    """Writes runs of one flow. Every file is written whole (a temporary file, then a rename), blobs
    before the index that names them and the DONE lock last, so a reader never sees half a task."""

    def __init__(self, root: Path, flow: str) -> None:
        self.root = root
        self.flow = flow
        self.bytes_written = 0
        self.blob_sizes: dict[str, int] = {}  # the blobs this store wrote or found: key -> size

    # -- objects ----------------------------------------------------------------------------------

    def write_flow(self, created_ms: int) -> None:
        self._write_json(
            self.root / self.flow / "_meta" / "_self.json", {"flow_id": self.flow, "ts_epoch": created_ms}
        )

    def write_run(self, run_id: str, tags: RunTags, created_ms: int) -> None:
        self._write_json(self._run(run_id) / "_meta" / "_self.json", self._object(run_id, tags, created_ms))

    def write_step(self, run_id: str, step: str, tags: RunTags, created_ms: int) -> None:
        body = {"run_number": run_id, "step_name": step, **self._object(None, tags, created_ms)}
        self._write_json(self._run(run_id) / step / "_meta" / "_self.json", body)

    def write_task(self, run_id: str, tags: RunTags, task: TaskFiles) -> None:
        folder = self._run(run_id) / task.step / task.task_id
        meta = folder / "_meta"
        self._write_json(folder / "0.attempt.json", {"time": task.created_ms / 1000})
        body = {"run_number": run_id, "step_name": task.step, "task_id": task.task_id}
        self._write_json(meta / "_self.json", {**body, **self._object(None, tags, task.created_ms)})
        keys = dict(task.objects)
        info = {
            name: {
                "size": self.blob_sizes.get(key, 0),
                "type": task.types.get(name, "object"),
                "encoding": ENCODING,
            }
            for name, key in keys.items()
        }
        self._write_json(
            folder / "0.data.json",
            {
                "datastore": "local",
                "version": "1.0",
                "attempt": 0,
                "python_version": sys.version,
                "objects": keys,
                "info": info,
            },
        )
        for stream, text in (("stdout", task.stdout), ("stderr", task.stderr)):
            self._write_bytes(folder / f"0.task_{stream}.log", mflog(text, task.created_ms))
        user = {"user_name": tags.user} if tags.user else {}
        for name, key in keys.items():
            artifact = {
                **body,
                "attempt_id": 0,
                "name": name,
                "content_type": ENCODING,
                "type": "metaflow.artifact",
                "sha": key,
                "ds_type": "local",
                "location": f":root:{self.root}",
                "flow_id": self.flow,
                **user,
                "tags": [],
                "system_tags": list(tags.system),
                "ts_epoch": task.finished_ms,
            }
            self._write_json(meta / f"0_artifact_{name}.json", artifact)
        fields = {
            "attempt": "0",
            "ds-type": "local",
            "ds-root": str(self.root),
            **({"user": tags.user} if tags.user else {}),
            **task.metadata,
        }
        for name, value in fields.items():
            self._sysmeta(meta, body, tags, name, name, value, task.created_ms)
        status = str(task.ok)
        self._sysmeta(meta, body, tags, "attempt_ok", "internal_attempt_status", status, task.finished_ms)
        self._sysmeta(meta, body, tags, "attempt-done", "attempt-done", "0", task.finished_ms)
        self._write_json(folder / "0.DONE.lock", "")

    # -- pieces -----------------------------------------------------------------------------------

    def _run(self, run_id: str) -> Path:
        return self.root / self.flow / run_id

    def _object(self, run_id: str | None, tags: RunTags, created_ms: int) -> dict[str, Any]:
        body: dict[str, Any] = {"run_number": run_id} if run_id is not None else {}
        body["flow_id"] = self.flow
        if tags.user:
            body["user_name"] = tags.user
        body.update({"tags": [], "system_tags": list(tags.system), "ts_epoch": created_ms})
        return body

    def _sysmeta(
        self,
        meta: Path,
        body: Mapping[str, str],
        tags: RunTags,
        name: str,
        kind: str,
        value: str,
        ts_ms: int,
    ) -> None:
        datum = {
            "flow_id": self.flow,
            **body,
            "field_name": name,
            "type": kind,
            "value": value,
            "tags": ["attempt_id:0"],
            **({"user_name": tags.user} if tags.user else {}),
            "ts_epoch": ts_ms,
        }
        self._write_json(meta / f"sysmeta_{name}_{ts_ms}.json", datum)

    def write_blob(self, key: str, blob: bytes) -> int:
        """A blob under its key (any 40-hex content digest); one the store holds already is kept."""
        return self.stream_blob(key, lambda file: file.write(blob))

    def stream_blob(self, key: str, write: Callable[[BinaryIO], object]) -> int:
        """A blob that `write` writes into the open file, under its key; returns its size."""
        if key in self.blob_sizes:
            return self.blob_sizes[key]
        path = self.root / self.flow / "data" / key[:2] / key
        if path.exists():
            size = path.stat().st_size
        else:
            # raw: stored as is (Metaflow's own default gzips, which costs more time than it saves here)
            size = self._stream(path, write)
            self._write_json(path.with_name(f"{key}_meta"), {"cas_raw": True, "cas_version": 1})
        self.blob_sizes[key] = size
        return size

    def _write_json(self, path: Path, value: Any) -> None:
        self._write_bytes(path, json.dumps(value).encode("utf-8"))

    def _write_bytes(self, path: Path, data: bytes) -> None:
        self._stream(path, lambda file: file.write(data))

    def _stream(self, path: Path, write: Callable[[BinaryIO], object]) -> int:
        # not fsynced: a checkpoint is thousands of small files, and debugging data a power cut may lose
        with atomic_writer(path, PRIVATE_MODE, durable=False) as file:
            write(file)
            size = file.tell()
        self.bytes_written += size
        return size


def mflog(text: str, ts_ms: int) -> bytes:
    """`text` as mflog lines (`[MFLOG|0|TIMESTAMPZ|task|ID]line`), the form the client merges and strips."""
    if not text:
        return b""
    stamp = datetime.fromtimestamp(ts_ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")
    lines = text[:-1].split("\n") if text.endswith("\n") else text.split("\n")
    marker = uuid.uuid4()
    return "".join(f"[MFLOG|0|{stamp}Z|task|{marker}]{line}\n" for line in lines).encode("utf-8")
