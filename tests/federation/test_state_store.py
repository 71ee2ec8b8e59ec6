"""One contract suite, run against every StateStore backend."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np
import pytest

from openfl_cli.errors import UsageError
from openfl_cli.federation.metrics import MetricRecord
from openfl_cli.federation.state import (
    BestMetric,
    MemoryStateStore,
    MemoryStorage,
    SqliteStateStore,
    StateMismatchError,
    StateStore,
    open_state_store,
)

PLAN = "a" * 96
OTHER_PLAN = "b" * 96

Opener = Callable[..., StateStore]


class _ConnectionWithoutBlobs:
    """A sqlite3 connection as Python 3.10 has it: no blob API (the store falls back to parameters)."""

    def __init__(self, connection: object) -> None:
        self._connection = connection

    def __getattr__(self, name: str) -> object:
        if name == "blobopen":
            raise AttributeError(name)
        return getattr(self._connection, name)


@pytest.fixture(params=["memory", "sqlite", "sqlite-small-chunks", "sqlite-without-blob-api"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens a store over the same backing storage each time it is called."""
    storage = MemoryStorage()
    opened: list[StateStore] = []

    def open_store(plan_hash: str = PLAN, **kwargs: object) -> StateStore:
        if request.param == "memory":
            store: StateStore = MemoryStateStore(plan_hash, storage=storage, **kwargs)  # type: ignore[arg-type]
        else:
            chunk = 1 << 20 if request.param == "sqlite" else 7
            store = SqliteStateStore(tmp_path / "state" / "tensor.db", plan_hash, chunk_bytes=chunk, **kwargs)  # type: ignore[arg-type]
            if request.param == "sqlite-without-blob-api":
                store._db = _ConnectionWithoutBlobs(store._db)  # type: ignore[assignment]
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()


def model(round_number: int) -> dict[str, np.ndarray]:
    return {
        "conv.weight": np.full((2, 3, 3), round_number, np.float32),
        "bn.steps": np.array(round_number, np.int64),
        "mask": np.array([True, False, round_number % 2 == 0]),
        "half": np.arange(5, dtype=np.float16) * round_number,
        "empty": np.zeros((0, 4), np.float64),
    }


def metrics(round_number: int) -> list[MetricRecord]:
    return [
        MetricRecord(
            round_number, "col1", "train", "loss", 1.0 / (round_number + 1), time=1000.0 + round_number
        ),
        MetricRecord(round_number, "aggregator", "aggregated_model_validation", "acc", 0.5, time=1000.5),
    ]


def assert_same(actual: Mapping[str, np.ndarray], expected: Mapping[str, np.ndarray]) -> None:
    assert set(actual) == set(expected)
    for name, value in expected.items():
        assert actual[name].dtype == value.dtype, name
        assert actual[name].shape == value.shape, name
        np.testing.assert_array_equal(actual[name], value)


def test_fresh_store_is_empty(opener: Opener) -> None:
    store = opener()
    assert store.last_round() is None
    assert store.latest() is None
    assert store.rounds() == []
    assert store.best() is None
    assert store.aggregation_state() == {}
    assert store.metrics_history() == []
    with pytest.raises(KeyError):
        store.model(0)


def test_commit_and_read_back(opener: Opener) -> None:
    store = opener()
    agg = {
        "train": {"velocity/conv.weight": np.ones((2, 3, 3), np.float32)},
        "aggregated_model_validation": {},
    }
    store.commit_round(0, model(0), metrics=metrics(0), best=BestMetric(0.5, 0), aggregation_state=agg)
    checkpoint = store.latest()
    assert checkpoint is not None
    assert checkpoint.round_number == 0
    assert_same(checkpoint.tensors, model(0))
    assert checkpoint.best == BestMetric(0.5, 0)
    assert set(checkpoint.aggregation_state) == {"train", "aggregated_model_validation"}
    assert_same(checkpoint.aggregation_state["train"], agg["train"])
    assert store.metrics_history() == metrics(0)


def test_reopen_after_close_resumes_from_the_last_round(opener: Opener) -> None:
    store = opener(db_store_rounds=2)
    for r in range(3):
        best = BestMetric(0.9, 1) if r == 1 else None
        store.commit_round(
            r, model(r), metrics=metrics(r), best=best, aggregation_state={"train": {"m/w": np.full(2, r)}}
        )
    store.close()
    again = opener(db_store_rounds=2)
    assert again.last_round() == 2
    assert again.rounds() == [1, 2]
    assert_same(again.model(1), model(1))
    assert again.best() == BestMetric(0.9, 1)  # None keeps the previous best
    assert_same(again.aggregation_state()["train"], {"m/w": np.full(2, 2)})
    assert again.metrics_history(1) == metrics(1)
    assert len(again.metrics_history()) == 6  # metrics of every round are kept


def test_db_store_rounds_prunes_old_models(opener: Opener) -> None:
    store = opener(db_store_rounds=1)
    for r in range(4):
        store.commit_round(r, model(r))
        assert store.rounds() == [r]
    with pytest.raises(KeyError):
        store.model(2)
    store3 = opener(db_store_rounds=3)
    store3.commit_round(4, model(4))
    store3.commit_round(5, model(5))
    store3.commit_round(6, model(6))
    assert store3.rounds() == [4, 5, 6]


def test_aggregation_state_none_keeps_the_previous(opener: Opener) -> None:
    store = opener()
    store.commit_round(1, model(1), aggregation_state={"train": {"v/w": np.ones(3)}})
    store.commit_round(2, model(2))
    assert_same(store.aggregation_state()["train"], {"v/w": np.ones(3)})
    store.commit_round(3, model(3), aggregation_state={})
    assert store.aggregation_state() == {}


def test_rounds_must_increase(opener: Opener) -> None:
    store = opener()
    store.commit_round(3, model(3))
    with pytest.raises(ValueError, match="not after"):
        store.commit_round(3, model(3))
    with pytest.raises(ValueError, match="round number"):
        store.commit_round(-1, {})


def test_plan_hash_mismatch_refuses_unless_reset(opener: Opener) -> None:
    store = opener()
    store.commit_round(0, model(0))
    store.close()
    with pytest.raises(StateMismatchError, match="another plan") as excinfo:
        opener(OTHER_PLAN)
    assert isinstance(excinfo.value, UsageError)
    fresh = opener(OTHER_PLAN, reset=True)
    assert fresh.last_round() is None
    fresh.close()
    with pytest.raises(StateMismatchError):
        opener(PLAN)


def test_a_failed_commit_leaves_the_previous_round_intact(opener: Opener) -> None:
    store = opener(db_store_rounds=1)
    store.commit_round(0, model(0), metrics=metrics(0))

    class Exploding(dict):
        def items(self):  # type: ignore[override]
            yield "conv.weight", np.ones(2, np.float32)
            raise RuntimeError("killed mid-commit")

    with pytest.raises(RuntimeError, match="mid-commit"):
        store.commit_round(1, Exploding(), metrics=metrics(1), best=BestMetric(1.0, 1))
    with pytest.raises(ValueError, match="dtype"):
        store.commit_round(1, {"bad": np.array(["text"])})
    assert store.last_round() == 0
    assert_same(store.model(0), model(0))
    assert store.best() is None
    assert store.metrics_history() == metrics(0)


def test_returned_arrays_are_copies(opener: Opener) -> None:
    store = opener()
    source = model(1)
    store.commit_round(1, source)
    source["conv.weight"][:] = -1  # the caller reuses its arrays
    loaded = store.model(1)
    np.testing.assert_array_equal(loaded["conv.weight"], 1)
    loaded["conv.weight"][:] = 7  # and may modify what it got
    np.testing.assert_array_equal(store.model(1)["conv.weight"], 1)


def test_settings_are_validated(opener: Opener) -> None:
    with pytest.raises(ValueError, match="db_store_rounds"):
        opener(db_store_rounds=0)
    with pytest.raises(ValueError, match="plan_hash"):
        opener("")


def test_open_state_store_picks_the_backend(tmp_path: Path) -> None:
    assert isinstance(open_state_store(None, PLAN), MemoryStateStore)
    with open_state_store(tmp_path / "t.db", PLAN, db_store_rounds=2) as store:
        assert isinstance(store, SqliteStateStore)
        assert store.db_store_rounds == 2


def test_sqlite_uses_a_synced_rollback_journal_and_large_pages(tmp_path: Path) -> None:
    store = SqliteStateStore(tmp_path / "t.db", PLAN)
    db = store._connection()
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert db.execute("PRAGMA page_size").fetchone()[0] == 65536
    store.close()
    with pytest.raises(ValueError, match="closed"):
        store.last_round()


def test_sqlite_file_stays_near_the_kept_rounds(tmp_path: Path) -> None:
    """Pruned rounds' pages are reused by the next round: the file does not grow round after round."""
    tensors = {f"t{i}": np.full(100_000, 1.0, np.float32) for i in range(4)}  # 1.6 MB a round
    with SqliteStateStore(tmp_path / "t.db", PLAN, db_store_rounds=2) as store:
        for number in range(8):
            store.commit_round(number, tensors)
    # the kept rounds and the one a crash-safe overwrite needs
    assert (tmp_path / "t.db").stat().st_size < 3 * 1.6e6 + 1e6


def _io_counters() -> dict[str, int]:
    lines = Path("/proc/self/io").read_text().splitlines()
    return {line.split(":")[0]: int(line.split()[1]) for line in lines}


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux's /proc/self/io")
def test_sqlite_commit_moves_a_model_once(tmp_path: Path) -> None:
    """A steady-state commit writes the model once and reads next to nothing: no journaled copy of
    reused pages, no zeroing of pruned ones (secure_delete), no spilled zeroblobs, and no walk through
    the pruned round's overflow chains (the pointer maps of auto_vacuum)."""
    tensors = {f"t{i}": np.full(1_000_000, float(i), np.float32) for i in range(4)}  # 16 MB a round
    model_bytes = 16_000_000
    with SqliteStateStore(tmp_path / "t.db", PLAN, db_store_rounds=2) as store:
        assert store._connection().execute("PRAGMA secure_delete").fetchone()[0] == 2  # FAST
        assert store._connection().execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # INCREMENTAL
        for number in range(4):
            store.commit_round(number, tensors)
        before = _io_counters()
        store.commit_round(4, tensors)
        after = _io_counters()
        assert store.model(4)["t3"][-1] == 3.0 and store.rounds() == [3, 4]
    assert after["wchar"] - before["wchar"] < 1.2 * model_bytes
    assert after["rchar"] - before["rchar"] < 0.1 * model_bytes


_WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from openfl_cli.federation.metrics import MetricRecord
    from openfl_cli.federation.state import SqliteStateStore, BestMetric
    store = SqliteStateStore(sys.argv[1], "p" * 96, db_store_rounds=2, chunk_bytes=1 << 16)
    r = (store.last_round() or 0) + 1
    while True:
        tensors = {f"t{i}": np.full(50_000, r, np.float32) for i in range(8)}
        record = MetricRecord(r, "agg", "t", "m", float(r))
        store.commit_round(r, tensors, metrics=[record], best=BestMetric(r, r))
        print(r, flush=True)
        r += 1
    """
)


def test_sqlite_survives_sigkill_mid_commit(tmp_path: Path) -> None:
    db_path = tmp_path / "tensor.db"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(db_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        for _ in range(3):  # let it commit a few rounds, then kill it somewhere inside the next
            proc.stdout.readline()
        time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    store = SqliteStateStore(db_path, "p" * 96, db_store_rounds=2)
    last = store.last_round()
    assert last is not None and last >= 3
    assert store.best() == BestMetric(float(last), last)
    tensors = store.model(last)
    assert len(tensors) == 8 and all((t == last).all() for t in tensors.values())
    assert [m.round_number for m in store.metrics_history()] == list(range(1, last + 1))
    store.close()
