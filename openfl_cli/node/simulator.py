"""`fx simulate`: a workspace's whole experiment in one process.

The real `Aggregator` and `Collaborator` objects talk over the in-process link: no certificates, no
sockets, no serialization. Collaborators run as real threads, `threads` at a time; a collaborator that
is not running holds no model. Each worker thread keeps one task runner and lends it to the
collaborator it serves (only the data loader changes), so at most `threads` runners are alive whatever
the number of collaborators; a runner class with `one_per_collaborator = True` (a script runner, which
holds a site's running script) is built once per collaborator instead, given the workspace, reused
every round, and closed at the end. Data loaders are kept per collaborator: their shuffling state goes on
from round to round as in a real federation. With `opt_treatment: CONTINUE_LOCAL` each collaborator's
own optimizer state is kept between its rounds as arrays (that costs one model per collaborator).

The outputs are the real ones (`init`/`best`/`last` snapshots, `logs/metrics.jsonl`, TensorBoard
events); the persistent state store is off: a simulation is rerun, not resumed.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openfl_cli.data.shared import sharing_datasets
from openfl_cli.errors import FxError, UsageError
from openfl_cli.federation.progress import ConsoleReporter, TaskProgress
from openfl_cli.federation.specs import ExperimentSpec
from openfl_cli.node.collaborator import build_collaborator, build_pipeline
from openfl_cli.node.common import build_reference_runner
from openfl_cli.node.sim_progress import RoundProgress
from openfl_cli.transport.messages import Action

if TYPE_CHECKING:
    import numpy as np

    from openfl_cli.data.base import DataLoader
    from openfl_cli.federation.aggregator import Aggregator
    from openfl_cli.federation.progress import AggregatorReporter
    from openfl_cli.federation.specs import ComponentBuilder
    from openfl_cli.runners.base import TaskRunner
    from openfl_cli.tensors.pipelines import TensorEncoder

log = logging.getLogger(__name__)

ROUND_WAIT_SECONDS = 3600.0  # how long the driver waits for the aggregator to open the next round


@dataclass(frozen=True)
class SimulationResult:
    rounds_to_train: int
    rounds_done: int
    collaborators: int
    threads: int
    seconds: float
    collaborator_tasks: int  # tasks run by collaborators, over all rounds
    last_state_path: Path
    best_state_path: Path | None  # None: no best model was written
    metrics_file: Path
    finished: bool


def simulation_spec(
    spec: ExperimentSpec, collaborators: int | None = None, rounds: int | None = None
) -> ExperimentSpec:
    """`spec` as the simulator runs it: `collaborators` named collaborator1..N on shards 1..N of the
    data loader (`collaborator_count` = N), or the plan's own collaborators and data paths; `rounds`
    overriding rounds_to_train; no persistent state store."""
    agg = spec.aggregator
    data_loader = spec.data_loader
    data_paths = dict(spec.data_paths)
    names: tuple[str, ...] = agg.collaborators
    if collaborators is not None:
        if collaborators < 1:
            raise UsageError(f"--collaborators: expected a positive integer, got {collaborators}")
        names = tuple(f"collaborator{index}" for index in range(1, collaborators + 1))
        data_paths = {name: str(index) for index, name in enumerate(names, start=1)}
        data_loader = data_loader.with_settings(collaborator_count=collaborators)
    elif not names:
        raise UsageError(
            "plan/cols.yaml lists no collaborators: give --collaborators N to simulate N of them"
        )
    else:
        missing = [name for name in names if name not in data_paths]
        if missing:
            raise UsageError(
                f"plan/data.yaml: no data path for {', '.join(missing[:3])}"
                f"{' ...' if len(missing) > 3 else ''}; add them, or give --collaborators N"
            )
    if rounds is not None and rounds < 1:
        raise UsageError(f"--rounds: expected a positive integer, got {rounds}")
    outputs = replace(agg.outputs, persist_checkpoint=False)
    aggregator = replace(
        agg,
        collaborators=names,
        rounds_to_train=rounds if rounds is not None else agg.rounds_to_train,
        outputs=outputs,
        name="simulator",
    )
    return replace(spec, aggregator=aggregator, data_loader=data_loader, data_paths=data_paths)


def simulate(
    plan_path: str | Path = "plan/plan.yaml",
    cols_path: str | Path | None = "plan/cols.yaml",
    data_path: str | Path | None = "plan/data.yaml",
    *,
    collaborators: int | None = None,
    rounds: int | None = None,
    threads: int = 1,
    reporter: AggregatorReporter | None = None,
    show_progress: bool = True,
) -> SimulationResult:
    """Run the plan's experiment in this process; see the module's docstring."""
    from openfl_cli.node.common import existing
    from openfl_cli.plan import Plan

    if threads < 1:
        raise UsageError(f"--threads: expected a positive integer, got {threads}")
    plan = Plan.load(
        plan_path,
        existing(cols_path) if cols_path else None,
        existing(data_path) if data_path else None,
    )
    spec = simulation_spec(plan.experiment(), collaborators, rounds)
    from openfl_cli.node.aggregator import workspace_lock

    # the simulator writes the aggregator's outputs and state: never beside a running aggregator
    with workspace_lock(spec.workspace):
        return run_simulation(spec, plan, threads=threads, reporter=reporter, show_progress=show_progress)


def run_simulation(
    spec: ExperimentSpec,
    builder: ComponentBuilder,
    *,
    threads: int = 1,
    reporter: AggregatorReporter | None = None,
    show_progress: bool = True,
) -> SimulationResult:
    """Run `spec` (already shaped by `simulation_spec`) with `builder` building its components."""
    from openfl_cli.node.aggregator import build_aggregator

    started = time.monotonic()
    with sharing_datasets(), _quiet_collaborator_logs():
        _ensure_initial_model(spec, builder)
        # the round bars below replace the reporter's own; `fx simulate` prints the table itself
        aggregator, outputs = build_aggregator(
            spec, builder, reporter or ConsoleReporter(table=False, live=False)
        )
        progress = RoundProgress(enabled=show_progress)
        try:
            pool = _Workers(spec, builder, aggregator, threads, progress)
            serving = threading.Thread(target=_serve, args=(aggregator, pool), name="fx-sim-aggregator")
            serving.start()
            try:
                _drive(spec, aggregator, pool, progress)
            except BaseException:  # an interrupt: the jobs not started are dropped
                aggregator.stop()
                pool.abort()
                raise
            finally:
                pool.close()
                serving.join()
            if pool.error is not None:
                raise pool.error
            if pool.serve_error is not None:
                raise pool.serve_error
        finally:
            outputs.close()
            progress.close()
    agg = spec.aggregator
    return SimulationResult(
        rounds_to_train=agg.rounds_to_train,
        rounds_done=aggregator.round_number,
        collaborators=len(agg.collaborators),
        threads=threads,
        seconds=time.monotonic() - started,
        collaborator_tasks=pool.tasks_run,
        last_state_path=outputs.last_path,
        best_state_path=outputs.best_written(),
        metrics_file=spec.resolve(agg.outputs.logs_dir) / "metrics.jsonl",
        finished=aggregator.finished,
    )


def _serve(aggregator: Aggregator, pool: _Workers) -> None:
    try:
        aggregator.run()
    except BaseException as exc:
        pool.serve_error = exc
        aggregator.stop()  # wakes the driver's long poll
        pool.abort()


def _drive(spec: ExperimentSpec, aggregator: Aggregator, pool: _Workers, progress: RoundProgress) -> None:
    """Hand each round's collaborators to the workers, wait for the next round, until the end."""
    from openfl_cli.transport.inprocess import InProcessLink

    names = spec.aggregator.collaborators
    watcher = InProcessLink(aggregator, names[0])  # a long poll that returns when a new round opens
    aborted = False  # the aggregator stopped the experiment (it raises why)
    while not aggregator.finished and not pool.failed and not aborted:
        round_number = aggregator.round_number
        progress.round_started(round_number, spec.aggregator.rounds_to_train, len(names))
        for name in names:
            pool.submit(name)
        pool.join()
        if pool.failed:
            break
        while not aggregator.finished and not pool.failed and aggregator.round_number == round_number:
            assignment = watcher.get_tasks(ROUND_WAIT_SECONDS)
            aborted = assignment.action is Action.ABORT
            if assignment.action is Action.QUIT or aborted:
                break
    # everyone hears that the experiment is over, so the aggregator need not wait for them
    for name in names:
        InProcessLink(aggregator, name).get_tasks(0.0)


@contextmanager
def _quiet_collaborator_logs() -> Iterator[None]:
    """A thousand collaborators' per-round info lines would drown the round lines: only warnings and
    errors, unless debug logging was asked for."""
    logger = logging.getLogger("openfl_cli.federation.collaborator")
    previous = logger.level
    if not logger.isEnabledFor(logging.DEBUG):
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(previous)


class _QuietProgress(TaskProgress):
    """A simulated collaborator's task lines go to the debug log; the round's task bars count."""

    def __init__(self, rounds: RoundProgress) -> None:
        super().__init__()
        self.rounds = rounds

    @contextmanager
    def task(self, label: str) -> Iterator[None]:
        yield
        self.rounds.task_done(label.split(" ", 2)[-1])  # the collaborator's label: "round 2/3 train"

    def line(self, text: str) -> None:
        log.debug("%s", text)


class _Workers:
    """`threads` worker threads; each serves one collaborator at a time with the runner it keeps."""

    def __init__(
        self,
        spec: ExperimentSpec,
        builder: ComponentBuilder,
        aggregator: Aggregator,
        threads: int,
        progress: RoundProgress,
    ) -> None:
        self.spec = spec
        self.builder = builder
        self.aggregator = aggregator
        self.progress = progress
        self.error: BaseException | None = None
        self.serve_error: BaseException | None = None
        self.tasks_run = 0
        self._jobs: queue.Queue[str | None] = queue.Queue()
        self._lock = threading.Lock()
        self._loaders: dict[str, DataLoader] = {}
        self._per_collaborator = one_per_collaborator(spec, builder)
        self._runners: dict[str, TaskRunner] = {}  # by collaborator, for one_per_collaborator runners
        self._runner_extras = runner_extras(spec, self._per_collaborator)
        self._optimizer_states: dict[str, dict[str, np.ndarray]] = {}
        self._keep_optimizer = spec.aggregator.opt_treatment == "CONTINUE_LOCAL"
        self._pipeline: TensorEncoder | None = build_pipeline(spec.compression, builder)
        self._task_progress = _QuietProgress(progress)
        self._threads = [
            threading.Thread(target=self._work, name=f"fx-sim-{index}", daemon=True)
            for index in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def failed(self) -> bool:
        return self.error is not None or self.serve_error is not None

    def submit(self, name: str) -> None:
        self._jobs.put(name)

    def join(self) -> None:
        self._jobs.join()

    def abort(self) -> None:
        """Drop the jobs not yet started (after an error); the workers' stop marks stay queued, since
        the aggregator's thread may abort while the driver is closing the pool."""
        stops = 0
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            stops += job is None
            self._jobs.task_done()
        for _ in range(stops):
            self._jobs.put(None)

    def close(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join()
        for runner in self._runners.values():
            _close(runner)

    def _work(self) -> None:
        runner: TaskRunner | None = None
        while True:
            name = self._jobs.get()
            try:
                if name is None:
                    if runner is not None:
                        _close(runner)
                    return
                if not self.failed:
                    runner = self._serve(name, runner)
            except BaseException as exc:
                with self._lock:
                    if self.error is None:
                        self.error = FxError(f"collaborator {name}: {exc}")
                        self.error.__cause__ = exc
                self.aggregator.stop()
                self.abort()
            finally:
                self._jobs.task_done()

    def _serve(self, name: str, runner: TaskRunner | None) -> TaskRunner | None:
        """Run collaborator `name`'s tasks of the current round; return the thread's runner for the next
        one (None while runners are kept per collaborator)."""
        from openfl_cli.transport.inprocess import InProcessLink

        link = InProcessLink(self.aggregator, name, pipeline=self._pipeline)
        assignment = link.get_tasks(0.0)
        own = self.spec.collaborator(name)
        loader = self._loader(name, own.data_path)
        if self._per_collaborator:
            active = self._runners.get(name)
            if active is None:
                active = self.builder.build(own.task_runner, {"data_loader": loader}, self._runner_extras)
                self._runners[name] = active  # one thread per name at a time: no race on the same key
        elif runner is None:
            runner = active = self.builder.build(own.task_runner, {"data_loader": loader})
        else:
            runner.data_loader = loader
            active = runner
        if assignment.action is not Action.RUN:
            return runner
        for task in assignment.tasks:
            self.progress.task_started(task.name)
        if self._keep_optimizer:  # this collaborator's own state, or a fresh one as a new runner has
            if name in self._optimizer_states:
                active.set_tensor_dict(self._optimizer_states[name], with_opt_vars=True)
            else:
                active.reset_opt_vars()
        collaborator = build_collaborator(
            own, self.builder, link, runner=active, progress=self._task_progress, background_upload=False
        )
        collaborator.rounds_to_train = self.spec.aggregator.rounds_to_train
        collaborator.run_round(assignment.round_number, assignment.tasks)
        if self._keep_optimizer:
            self._optimizer_states[name] = active.get_tensor_dict(with_opt_vars=True)
        with self._lock:
            self.tasks_run += len(assignment.tasks)
        self.progress.collaborator_done()
        return runner

    def _loader(self, name: str, data_path: str) -> DataLoader:
        loader = self._loaders.get(name)
        if loader is None:
            loader = self.builder.build(self.spec.data_loader, {"data_path": data_path})
            loader.collaborator_name = name  # whose data it is (a script runner's site)
            self._loaders[name] = loader  # one thread per name at a time: no race on the same key
        return loader


def one_per_collaborator(spec: ExperimentSpec, builder: ComponentBuilder) -> bool:
    """Whether the plan's runner class asks to be kept per collaborator (`one_per_collaborator`)."""
    try:
        target = builder.import_callable(spec.task_runner.template, spec.task_runner.key)
    except Exception:
        return False  # building it fails the same way, and that error names the collaborator
    return bool(getattr(target, "one_per_collaborator", False))


def runner_extras(spec: ExperimentSpec, per_collaborator: bool) -> dict[str, Any] | None:
    """What a per-collaborator runner is given besides its settings: the workspace its paths are
    relative to (whatever the current folder); other runners get nothing new."""
    return {"workspace": spec.workspace} if per_collaborator else None


def _close(runner: TaskRunner) -> None:
    try:
        runner.close()
    except Exception:
        log.exception("closing a task runner failed")


def _ensure_initial_model(spec: ExperimentSpec, builder: ComponentBuilder) -> None:
    """Without `init.pbuf`, write it from the task runner as `fx plan initialize` would."""
    path = spec.resolve(spec.aggregator.outputs.init_path)
    if path.is_file():
        return
    from openfl_cli.tensors.snapshot import save_snapshot

    extras = runner_extras(spec, one_per_collaborator(spec, builder))
    if extras is None:
        tensors = build_reference_runner(spec, builder).get_tensor_dict(with_opt_vars=False)
    else:  # as build_reference_runner does, with the workspace given
        first = next(iter(spec.data_paths.values()), "1")
        loader = builder.build(spec.data_loader, {"data_path": first})
        reference: TaskRunner = builder.build(spec.task_runner, {"data_loader": loader}, extras)
        tensors = reference.get_tensor_dict(with_opt_vars=False)
        _close(reference)
    if not tensors:
        raise UsageError(f"the task runner {spec.task_runner.template} has no tensors")
    save_snapshot(path, tensors, round_number=0)
    log.info("no initial model: wrote %s from the task runner (as `fx plan initialize` does)", path)
