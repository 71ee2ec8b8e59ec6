"""Closing a round: the new global model from every task's aggregation function, the aggregated
metrics, and the work that writes them (run by the aggregator, in the background except for the last
round)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from openfl_cli.federation.aggregation.metrics import weighted_metrics
from openfl_cli.federation.aggregator.outputs import RoundOutputs, RoundRecord
from openfl_cli.federation.progress import AggregatorReporter, RoundSummary

if TYPE_CHECKING:
    import numpy as np

    from openfl_cli.federation.aggregation.function import AggregationFunction
    from openfl_cli.federation.aggregator.rounds import RoundState

log = logging.getLogger(__name__)


def aggregate(
    functions: Mapping[str, AggregationFunction],
    start_model: Mapping[str, np.ndarray],
    aggregated: Mapping[str, Mapping[str, np.ndarray]] | None = None,
) -> dict[str, np.ndarray]:
    """End the round of every task's function (or take what `aggregated` holds for a task whose round
    already ended); tensors a task aggregated replace the global ones."""
    aggregated = aggregated or {}
    new_model = dict(start_model)
    for task, function in functions.items():
        values = aggregated[task] if task in aggregated else function.end_round()
        for name, value in values.items():
            if value is not start_model.get(name):
                new_model[name] = value
    return new_model


def round_record(
    state: RoundState,
    outputs: RoundOutputs,
    start_model: Mapping[str, np.ndarray],
    new_model: Mapping[str, np.ndarray],
    functions: Mapping[str, AggregationFunction],
) -> RoundRecord:
    """What the outputs need of a closed round (call with the aggregator's lock held). The starting
    model is kept only when it becomes the best one, so a pending write holds no extra model otherwise."""
    aggregated = {task: weighted_metrics(pairs) for task, pairs in state.task_results().items()}
    if not state.contributors():
        log.warning("round %d closed without any result: the model is unchanged", state.number + 1)
    best, best_model = outputs.judge(state.number, aggregated, start_model, new_model)
    return RoundRecord(
        number=state.number,
        new_model=new_model,
        aggregated=aggregated,
        collaborator_records=state.collaborator_records(),
        aggregation_state={task: fn.state_dict() for task, fn in functions.items()},
        best=best,
        best_model=best_model,
    )


def write_work(
    outputs: RoundOutputs,
    record: RoundRecord,
    reporter: AggregatorReporter | None,
    summary: Callable[[bool], RoundSummary],
) -> Callable[[], None]:
    """The writing of a closed round, then its line (so a printed round is a recorded round)."""

    def work() -> None:
        outputs.round_closed(record)
        if reporter is not None:
            reporter.round_closed(summary(record.best is not None))

    return work
