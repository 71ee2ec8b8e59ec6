"""Reading a checkpoint back: the best and the last model of a run, chosen from its join tasks.

This is the seed's manual recipe ("list the join tasks, read each round's metric, pick the task")
done for the user, with the real Metaflow client (`pip install 'openfl-cli[metaflow]'`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from openfl_cli.errors import UsageError


@dataclass(frozen=True)
class CheckpointedModels:
    run: str  # the run's pathspec, FLOW/RUN
    metric: str
    best: Any  # the best round's model
    best_task: str  # the pathspec of the join task that holds it
    best_round: int  # counted from 0, in the order the joins ran
    best_value: float
    last: Any  # the last round's model
    last_task: str
    rounds: int


def best_and_last(
    run: str,
    metric: str,
    *,
    model: str = "model",
    step: str | None = None,
    mode: Literal["max", "min"] = "max",
) -> CheckpointedModels:
    """The best and the last `model` of `run` (`"FLOW"` for its latest run, or `"FLOW/RUN"`), from
    the tasks of its join step (`step`, found in the run's graph when the flow has one join), ranked
    by their attribute `metric` (`mode="max"` for accuracy, `"min"` for a loss)."""
    if mode not in ("max", "min"):
        raise UsageError(f"best_and_last: mode is 'max' or 'min', got {mode!r}")
    try:
        from metaflow import Flow, Run
    except ImportError as err:
        raise UsageError(
            "reading a checkpoint needs Metaflow's client: pip install 'openfl-cli[metaflow]'"
        ) from err
    found = Run(run) if "/" in run else Flow(run).latest_run
    if found is None:
        raise UsageError(f"best_and_last: the flow {run} has no run")
    join = step or _only_join(found)
    tasks = sorted(found[join], key=lambda task: task.created_at)  # the client lists newest first
    if not tasks:
        raise UsageError(f"best_and_last: {found.pathspec} has no {join} task")
    values = []
    for task in tasks:
        available = {artifact.id for artifact in task}
        for name in (metric, model):
            if name not in available:
                shown = ", ".join(sorted(a for a in available if not a.startswith("_")))
                raise UsageError(
                    f"best_and_last: task {task.pathspec} has no attribute {name} (it has {shown})"
                )
        value = float(task[metric].data)
        values.append(-math.inf if math.isnan(value) else value if mode == "max" else -value)
    best = max(range(len(tasks)), key=lambda index: values[index])  # the first of equals
    return CheckpointedModels(
        run=found.pathspec,
        metric=metric,
        best=tasks[best][model].data,
        best_task=tasks[best].pathspec,
        best_round=best,
        best_value=float(tasks[best][metric].data),
        last=tasks[-1][model].data,
        last_task=tasks[-1].pathspec,
        rounds=len(tasks),
    )


def _only_join(run: Any) -> str:
    steps = run["start"].task["_graph_info"].data["steps"]
    joins = sorted(name for name, info in steps.items() if info.get("type") == "join")
    if len(joins) != 1:
        listed = ", ".join(joins) or "none"
        raise UsageError(f"best_and_last: name the join step (step=...); {run.pathspec} has joins: {listed}")
    return joins[0]
