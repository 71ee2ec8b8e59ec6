"""`AggregationFunction`: one per task; hands out per-tensor accumulators and closes rounds."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping

import numpy as np

from openfl_cli.federation.aggregation.base import (
    AgreementAccumulator,
    ContributionError,
    TensorAccumulator,
    is_float_tensor,
)


class AggregationFunction(ABC):
    """Aggregates the results of one task, round after round (see `aggregation.base` for the contract).

    Subclasses choose the accumulator of float tensors (`_float_accumulator`) and may transform the
    aggregate into the new global value with server state (`_server_step`, `state_dict`).
    """

    # True when, before anything is committed in a round, a result folds straight into the running
    # aggregate instead of being staged (no copy): the aggregator lets such a result stream beside
    # its bounded results in flight, since it costs no extra memory.
    folds_first_result: bool = False

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._round: int | None = None
        self._globals: Mapping[str, np.ndarray] = {}
        self._accumulators: dict[str, TensorAccumulator] = {}

    @property
    def round_number(self) -> int | None:
        """The open round, or None between rounds."""
        return self._round

    def begin_round(self, round_number: int, global_tensors: Mapping[str, np.ndarray]) -> None:
        """Open a round over `global_tensors` (the model sent out; not copied: do not mutate it
        until `end_round`). Discards an unfinished previous round."""
        self.abort_round()
        self._round = round_number
        self._globals = global_tensors

    def accumulator(self, name: str, round_number: int | None = None) -> TensorAccumulator:
        """The accumulator of tensor `name` this round (created on first use); with `round_number`,
        ContributionError unless that round is the open one (a late result never lands in the next)."""
        with self._lock:
            if self._round is None:
                raise RuntimeError("no round is open: call begin_round first")
            if round_number is not None and round_number != self._round:
                raise ContributionError(f"tensor {name!r}: round {round_number} is closed")
            acc = self._accumulators.get(name)
            if acc is None:
                if name not in self._globals:
                    raise ContributionError(f"tensor {name!r} is not part of the global model")
                global_value = np.asarray(self._globals[name])
                if is_float_tensor(global_value):
                    acc = self._float_accumulator(name, global_value)
                else:
                    acc = AgreementAccumulator(name, global_value)
                self._accumulators[name] = acc
            return acc

    def add(
        self,
        contributor: str,
        name: str,
        array: np.ndarray,
        weight: float,
        *,
        is_delta: bool = False,
        may_fold: bool = True,
        owned: bool = False,
        round_number: int | None = None,
    ) -> None:
        """Shortcut for `accumulator(name, round_number).add(...)`."""
        self.accumulator(name, round_number).add(
            contributor, array, weight, is_delta=is_delta, may_fold=may_fold, owned=owned
        )

    def staging_array(self, name: str, round_number: int | None = None) -> np.ndarray | None:
        """An array of tensor `name`'s dtype and shape that a result of the open round may be received
        into and then added with `owned=True` (no copy), or None: the function copies what it keeps."""
        return None

    def _existing_accumulator(self, name: str) -> TensorAccumulator | None:
        with self._lock:
            return self._accumulators.get(name)

    def _global_value(self, name: str, round_number: int | None = None) -> np.ndarray | None:
        """The open round's global value of `name`, if any (and if `round_number` is that round)."""
        with self._lock:
            is_open = self._round is not None and round_number in (None, self._round)
            value = self._globals.get(name) if is_open else None
        return None if value is None else np.asarray(value)

    def commit(self, contributor: str) -> None:
        """Every tensor `contributor` staged this round counts."""
        for acc in self._snapshot():
            acc.commit(contributor)

    def remove(self, contributor: str, round_number: int | None = None) -> None:
        """Undo every tensor `contributor` staged and did not commit (in `round_number`, when given: an
        aborted late result must not undo the same collaborator's result of the next round)."""
        with self._lock:
            if round_number is not None and round_number != self._round:
                return  # that round's accumulators are gone, and what they staged with them
            accumulators = list(self._accumulators.values())
        for acc in accumulators:
            acc.remove(contributor)

    def contributors(self) -> set[str]:
        """Collaborators with a committed contribution this round."""
        return {name for acc in self._snapshot() for name in acc.contributors}

    def end_round(self) -> dict[str, np.ndarray]:
        """The new global value of every tensor given to `begin_round`, and close the round.

        Tensors nobody contributed to (with positive weight) keep their global value (the same array
        object). Server state (momentum, moments) advances once here, for the tensors aggregated.
        """
        if self._round is None:
            raise RuntimeError("no round is open: call begin_round first")
        try:
            out: dict[str, np.ndarray] = {}
            for name, global_value in self._globals.items():
                acc = self._accumulators.get(name)
                if acc is None or not acc.has_result():
                    out[name] = global_value
                    continue
                aggregate = acc.result()
                if is_float_tensor(aggregate):
                    aggregate = self._server_step(name, np.asarray(global_value), aggregate)
                out[name] = aggregate
            return out
        finally:
            self.abort_round()

    def abort_round(self) -> None:
        """Drop the open round without touching server state; frees staged copies and temp files."""
        with self._lock:
            accumulators, self._accumulators = self._accumulators, {}
            self._round = None
            self._globals = {}
        for acc in accumulators.values():
            acc.close()
        self._release_round()

    def close(self) -> None:
        self.abort_round()

    def state_dict(self) -> dict[str, np.ndarray]:
        """Server state that must survive a restart (empty for stateless functions)."""
        return {}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        if state:
            raise ValueError(f"{type(self).__name__} has no state, got keys {sorted(state)[:5]}")

    @abstractmethod
    def _float_accumulator(self, name: str, global_value: np.ndarray) -> TensorAccumulator: ...

    def _server_step(self, name: str, global_value: np.ndarray, aggregate: np.ndarray) -> np.ndarray:
        """Turn the aggregate of a float tensor into its new global value (identity by default)."""
        return aggregate

    def _release_round(self) -> None:
        """Hook for per-round resources (temporary folders)."""
        return None

    def _snapshot(self) -> list[TensorAccumulator]:
        with self._lock:
            return list(self._accumulators.values())
