"""Persistent aggregator state: one interface, in-memory and SQLite backends (see `base`)."""

from __future__ import annotations

from pathlib import Path

from openfl_cli.federation.state.base import (
    BestMetric,
    RoundCheckpoint,
    StateMismatchError,
    StateStore,
)
from openfl_cli.federation.state.memory import MemoryStateStore, MemoryStorage
from openfl_cli.federation.state.sqlite import SqliteStateStore


def open_state_store(
    path: str | Path | None, plan_hash: str, *, db_store_rounds: int = 1, reset: bool = False
) -> StateStore:
    """SQLite at `path` (persist_checkpoint: true), else an in-memory store."""
    if path is None:
        return MemoryStateStore(plan_hash, db_store_rounds=db_store_rounds, reset=reset)
    return SqliteStateStore(path, plan_hash, db_store_rounds=db_store_rounds, reset=reset)


__all__ = [
    "BestMetric",
    "MemoryStateStore",
    "MemoryStorage",
    "RoundCheckpoint",
    "SqliteStateStore",
    "StateMismatchError",
    "StateStore",
    "open_state_store",
]
