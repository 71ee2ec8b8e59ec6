"""SQLite `StateStore` at `persistent_db_path`: one transaction per round (rollback journal,
synchronous=FULL), tensors as raw little-endian bytes (dtype name + shape; never pickle) split into
chunks so a tensor may exceed SQLite's blob limit.

Sized for models of hundreds of MB written every round, in the background of the next round, so that a
round's tensors cross the disk once (measured with a 100 MB model: 0.3 s, 400 MB written, 300 MB read
per commit before; 0.11 s, 100 MB written and 2 MB read now):
- 64 KiB pages cut SQLite's per-page work (CPU and syscalls) about threefold against the default 4 KiB.
- A rollback journal, not WAL: WAL writes every page twice (into the log, then at checkpoint).
- The new round goes into pages freed by an earlier transaction, which SQLite neither journals nor reads
  back; so old rounds are pruned after the new one is written, and the file holds db_store_rounds + 1
  models (the one more is what a crash-safe overwrite needs anyway; pruning first kept it in the journal),
  and likewise two rounds of a server optimizer's state.
- auto_vacuum=INCREMENTAL, for its pointer maps only (no vacuum ever runs): pruning a round frees its
  chunks' overflow pages, and without a pointer map SQLite reads every one of them (a whole model per
  round, from the disk when the file is not cached) to find the next page of its chain.
- secure_delete=FAST: builds that default it ON (Debian's) zero every pruned page, which journals and
  rewrites a whole model per round. Pruned rounds are older models of this same aggregator, no more
  secret than the ones kept.
- Chunks of 1 MiB fit SQLite's page cache: a zeroblob row is filled through the blob API before any of
  its pages can spill to disk as zeros (64 MiB chunks wrote each page twice and read it back once).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from openfl_cli.federation.metrics.record import MetricRecord
from openfl_cli.federation.state.base import (
    SCHEMA_VERSION,
    BestMetric,
    StateMismatchError,
    StateStore,
    mismatch_error,
)
from openfl_cli.tensors.codec import array_bytes, array_from_buffer, dtype_name, expected_nbytes

CHUNK_BYTES = 1024 * 1024
CACHE_KIB = 8 * 1024  # SQLite's page cache: several chunks' pages, so a chunk never spills half-written
PAGE_BYTES = 64 * 1024  # SQLite's largest page size
MODEL_SCOPE = "model"
_AGG_PREFIX = "agg:"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tensors (
    id INTEGER PRIMARY KEY,
    round INTEGER NOT NULL,
    scope TEXT NOT NULL,
    name TEXT NOT NULL,
    dtype TEXT NOT NULL,
    shape TEXT NOT NULL,
    UNIQUE (round, scope, name)
);
CREATE TABLE IF NOT EXISTS chunks (
    tensor_id INTEGER NOT NULL REFERENCES tensors(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (tensor_id, seq)
);
CREATE TABLE IF NOT EXISTS metrics (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    round INTEGER NOT NULL,
    node TEXT NOT NULL,
    task TEXT NOT NULL,
    metric TEXT NOT NULL,
    value REAL NOT NULL,
    time REAL NOT NULL
);
"""


class SqliteStateStore(StateStore):
    def __init__(
        self,
        path: str | Path,
        plan_hash: str,
        *,
        db_store_rounds: int = 1,
        reset: bool = False,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        super().__init__(plan_hash, db_store_rounds)
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._chunk_bytes = chunk_bytes
        self._lock = threading.RLock()
        # Autocommit mode: transactions are explicit (BEGIN IMMEDIATE ... COMMIT) in `_transaction`.
        self._db: sqlite3.Connection | None = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=30
        )
        try:
            # both take effect in a new database only
            self._db.execute(f"PRAGMA page_size={PAGE_BYTES}")
            self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")  # pointer maps; never vacuumed
            self._db.execute("PRAGMA journal_mode=DELETE")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA secure_delete=FAST")
            self._db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._open(reset)
        except BaseException:
            self.close()
            raise

    def _open(self, reset: bool) -> None:
        with self._transaction() as db:
            # Not executescript(): it would commit the open transaction.
            for statement in _statements(_SCHEMA):
                db.execute(statement)
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            schema = int(meta.get("schema", SCHEMA_VERSION))
            if schema != SCHEMA_VERSION:
                raise StateMismatchError(
                    f"{self.path} has state schema {schema}, this fx reads {SCHEMA_VERSION}"
                )
            stored = meta.get("plan_hash")
            if stored is not None and stored != self.plan_hash and not reset:
                raise mismatch_error(str(self.path), stored, self.plan_hash)
            if reset or stored is None:
                for table in ("chunks", "tensors", "metrics", "meta"):
                    db.execute(f"DELETE FROM {table}")
                db.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [("schema", str(SCHEMA_VERSION)), ("plan_hash", self.plan_hash)],
                )

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            db = self._connection()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise ValueError(f"state store {self.path} is closed")
        return self._db

    def _meta(self, key: str) -> str | None:
        with self._lock:
            row = self._connection().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def last_round(self) -> int | None:
        value = self._meta("last_round")
        return None if value is None else int(value)

    def rounds(self) -> list[int]:
        with self._lock:
            rows = self._connection().execute(
                "SELECT DISTINCT round FROM tensors WHERE scope = ? ORDER BY round", (MODEL_SCOPE,)
            )
            kept = [row[0] for row in rows]
        last = self.last_round()
        # A round whose model had no tensors is still a kept round.
        if last is not None and last not in kept:
            kept.append(last)
        return kept

    def model(self, round_number: int) -> dict[str, np.ndarray]:
        if round_number not in self.rounds():
            raise KeyError(f"no model kept for round {round_number}")
        return self._read_scope(round_number, MODEL_SCOPE)

    def best(self) -> BestMetric | None:
        value = self._meta("best")
        if value is None:
            return None
        data = json.loads(value)
        return BestMetric(float(data["value"]), int(data["round"]))

    def aggregation_state(self) -> dict[str, dict[str, np.ndarray]]:
        last = self.last_round()
        if last is None:
            return {}
        with self._lock:
            rows = (
                self._connection()
                .execute(
                    "SELECT DISTINCT scope, round FROM tensors WHERE scope LIKE ? ESCAPE '\\'",
                    (_AGG_PREFIX.replace("_", "\\_") + "%",),
                )
                .fetchall()
            )
            tasks = json.loads(self._meta("agg_tasks") or "[]")
            state: dict[str, dict[str, np.ndarray]] = {task: {} for task in tasks}
            for scope, round_number in rows:
                state[scope[len(_AGG_PREFIX) :]] = self._read_scope(round_number, scope)
        return state

    def metrics_history(self, round_number: int | None = None) -> list[MetricRecord]:
        query = "SELECT round, node, task, metric, value, time FROM metrics"
        params: tuple[int, ...] = ()
        if round_number is not None:
            query, params = query + " WHERE round = ?", (round_number,)
        with self._lock:
            rows = self._connection().execute(query + " ORDER BY seq", params).fetchall()
        return [MetricRecord(*row) for row in rows]

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _commit(
        self,
        round_number: int,
        tensors: Mapping[str, np.ndarray],
        metrics: list[MetricRecord],
        best: BestMetric | None,
        aggregation_state: Mapping[str, Mapping[str, np.ndarray]] | None,
    ) -> None:
        with self._transaction() as db:
            # Written before anything is pruned: see the module's docstring.
            for name, array in tensors.items():
                self._write_tensor(db, round_number, MODEL_SCOPE, name, array)
            if aggregation_state is not None:
                for task, state in aggregation_state.items():
                    for name, array in state.items():
                        self._write_tensor(db, round_number, _AGG_PREFIX + task, name, array)
                db.execute("DELETE FROM tensors WHERE scope LIKE 'agg:%' AND round != ?", (round_number,))
                self._set_meta(db, "agg_tasks", json.dumps(sorted(aggregation_state)))
            db.execute(
                "DELETE FROM tensors WHERE scope = ? AND round <= ?",
                (MODEL_SCOPE, round_number - self.db_store_rounds),
            )
            db.executemany(
                "INSERT INTO metrics (round, node, task, metric, value, time) VALUES (?, ?, ?, ?, ?, ?)",
                [(m.round_number, m.node, m.task, m.metric, m.value, m.time) for m in metrics],
            )
            if best is not None:
                self._set_meta(db, "best", json.dumps({"value": best.value, "round": best.round_number}))
            self._set_meta(db, "last_round", str(round_number))

    def _write_tensor(
        self, db: sqlite3.Connection, round_number: int, scope: str, name: str, array: np.ndarray
    ) -> None:
        array = np.asarray(array)
        cursor = db.execute(
            "INSERT INTO tensors (round, scope, name, dtype, shape) VALUES (?, ?, ?, ?, ?)",
            (round_number, scope, name, dtype_name(array.dtype), json.dumps(list(array.shape))),
        )
        tensor_id = cursor.lastrowid
        data = array_bytes(array)
        step = self._chunk_bytes
        if not hasattr(db, "blobopen"):  # Python 3.10
            db.executemany(
                "INSERT INTO chunks (tensor_id, seq, data) VALUES (?, ?, ?)",
                (
                    (tensor_id, seq, data[start : start + step])
                    for seq, start in enumerate(range(0, max(len(data), 1), step))
                ),
            )
            return
        for seq, start in enumerate(range(0, max(len(data), 1), step)):
            piece = data[start : start + step]
            # A zeroblob row filled through the blob API: SQLite copies the bytes once, into its pages,
            # without the GIL; binding them as a parameter would copy them first, holding the GIL.
            row = db.execute(
                "INSERT INTO chunks (tensor_id, seq, data) VALUES (?, ?, zeroblob(?))",
                (tensor_id, seq, len(piece)),
            ).lastrowid
            if len(piece) and row is not None:
                with db.blobopen("chunks", "data", row) as blob:
                    blob.write(piece)

    def _read_scope(self, round_number: int, scope: str) -> dict[str, np.ndarray]:
        with self._lock:
            db = self._connection()
            rows = db.execute(
                "SELECT id, name, dtype, shape FROM tensors WHERE round = ? AND scope = ? ORDER BY id",
                (round_number, scope),
            ).fetchall()
            out: dict[str, np.ndarray] = {}
            for tensor_id, name, dtype, shape_json in rows:
                shape = json.loads(shape_json)
                buffer = bytearray(expected_nbytes(dtype, shape))
                view = memoryview(buffer)
                offset = 0
                for (chunk,) in db.execute(
                    "SELECT data FROM chunks WHERE tensor_id = ? ORDER BY seq", (tensor_id,)
                ):
                    if offset + len(chunk) > len(buffer):
                        raise ValueError(f"{self.path}: tensor {name!r} of round {round_number} is corrupt")
                    view[offset : offset + len(chunk)] = chunk
                    offset += len(chunk)
                if offset != len(buffer):
                    raise ValueError(f"{self.path}: tensor {name!r} of round {round_number} is truncated")
                out[name] = array_from_buffer(buffer, dtype, shape)
        return out

    @staticmethod
    def _set_meta(db: sqlite3.Connection, key: str, value: str) -> None:
        db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = ?",
            (key, value, value),
        )


def _statements(script: str) -> list[str]:
    return [part.strip() for part in script.split(";") if part.strip()]
