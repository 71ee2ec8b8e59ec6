"""Running one experiment at the director: the envoys' review, then the flow, with its aggregator steps
here and each collaborator's chain of steps at the envoy of that name.

The flow runs on the LocalRuntime's own loop (`workflow/runtime.py`) with a backend that sends each
chain to its envoy instead of running it: the same steps, transitions, joins and checkpoints, so the
same flow gives the same result on both runtimes.
"""

from __future__ import annotations

import itertools
import logging
import shutil
import statistics
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from openfl_cli.director.experiment import ChainTaskRecord, ExperimentFailed, ExperimentRecord
from openfl_cli.errors import FxError
from openfl_cli.proto import director_pb2 as dpb
from openfl_cli.workflow.capture import forwarded_output
from openfl_cli.workflow.engine import ChainResult, new_flow
from openfl_cli.workflow.experiment import load_experiment, unload_experiment
from openfl_cli.workflow.flspec import FLSpec
from openfl_cli.workflow.participants import Collaborator, Participant
from openfl_cli.workflow.remote_types import (
    chain_payload,
    output_from_proto,
    snapshot_from_info,
    transition_from_proto,
)
from openfl_cli.workflow.runtime import LocalRuntime
from openfl_cli.workflow.snapshot import SnapshotSink
from openfl_cli.workflow.wire import dump_state, load_state

log = logging.getLogger(__name__)

Push = Callable[[str, dpb.WorkItem], None]  # queue a work item for an envoy


def experiment_module_name(package_hash: str) -> str:
    return f"fx_experiment_{package_hash[:16]}"


def traveling_state(flow: FLSpec, private: Sequence[str] = ()) -> dict[str, Any]:
    """What a flow object carries between the user and the director: every attribute but the
    runtime's own (`_fx_...`) and the aggregator's private ones."""
    hidden = set(private)
    return {k: v for k, v in vars(flow).items() if not k.startswith("_fx_") and k not in hidden}


class EnvoyBackend:
    """The LocalRuntime backend whose chains run at the envoys."""

    def __init__(self, record: ExperimentRecord, module: ModuleType, push: Push) -> None:
        self._record = record
        self._module = module
        self._push = push
        self._numbers = itertools.count(1)
        # per foreach: its wall time less the slowest chain's own code (transfers, encoding, queues)
        self.outside_seconds: list[float] = []

    def setup(self, collaborators: Sequence[Collaborator]) -> None:
        """Nothing to build here: each envoy builds its own private attributes."""

    def run_chains(
        self,
        flow_class: type[FLSpec],
        step: str,
        state: dict[str, Any],
        names: Sequence[str],
        runtime: Any,
        sink: SnapshotSink | None = None,
    ) -> Iterator[ChainResult]:
        record = self._record
        dispatched = time.perf_counter()
        payload, arrays = dump_state(state, [self._module.__name__])  # once for all the envoys
        tasks: list[ChainTaskRecord] = []
        for name in names:
            task_id = f"{step}-{next(self._numbers)}"
            chain = dpb.ChainTask(
                experiment=record.id,
                task=task_id,
                step=step,
                collaborators=list(runtime.collaborators),
                snapshots=sink is not None,
                hash=record.package.hash,
            )
            task = ChainTaskRecord(task_id, name, step, chain, payload, arrays)
            with record.changed:
                record.tasks[task_id] = task
            tasks.append(task)
            self._push(name, dpb.WorkItem(chain=chain))
        del payload, arrays
        compute = 0.0
        try:
            for task in tasks:
                # any envoy's failure ends the wait at once, not only the awaited one's
                record.wait_until(
                    lambda task=task: task.done or any(_failed(t) for t in tasks),  # type: ignore[misc]
                    f"while {task.envoy} ran step {step}",
                )
                failed = next((t for t in tasks if _failed(t)), None)
                result = self._result(failed or task, sink)
                compute = max(compute, sum(output.seconds for output in result.outputs))
                yield result
            self.outside_seconds.append(time.perf_counter() - dispatched - compute)
        finally:
            with record.changed:
                for task in tasks:
                    record.tasks.pop(task.id, None)

    def _result(self, task: ChainTaskRecord, sink: SnapshotSink | None) -> ChainResult:
        if task.error is not None:
            raise ExperimentFailed(task.error)
        assert task.result is not None
        header = task.result.header.result
        failure = f"collaborator {task.envoy} failed in step {task.step}: {header.error}"
        try:
            decoded = load_state(task.result.payload, task.result.arrays, self._module)
            task.result = None  # the decoded state holds the arrays now
            state, snapshot_values = chain_payload(decoded, len(header.snapshots), task.envoy)
        except FxError:
            if not header.ok:  # the envoy's own error says more than a malformed report of it
                raise ExperimentFailed(failure) from None
            raise
        if sink is not None:
            for info, values in zip(header.snapshots, snapshot_values, strict=True):
                sink(snapshot_from_info(info, values, task.envoy))
        if not header.ok:
            raise ExperimentFailed(failure)
        outputs = [output_from_proto(output, task.envoy) for output in header.outputs]
        return ChainResult(task.envoy, state, transition_from_proto(header.transition), outputs)

    def close(self) -> None:
        """Nothing to release: the envoys unload the experiment when it ends."""


def _failed(task: ChainTaskRecord) -> bool:
    return task.error is not None or (task.result is not None and not task.result.header.result.ok)


class DirectorRuntime(LocalRuntime):
    """The LocalRuntime's loop over the envoys: what the flow's steps see as `self.runtime` here."""

    def __init__(self, aggregator: Participant, collaborators: Sequence[str], backend: EnvoyBackend) -> None:
        super().__init__(
            aggregator=_as_aggregator(aggregator), collaborators=[Collaborator(n) for n in collaborators]
        )
        self._remote = backend

    def _backend(self) -> Any:
        return self._remote

    def __repr__(self) -> str:
        return f"FederatedRuntime(collaborators={self.collaborators})"


def _as_aggregator(participant: Participant) -> Any:
    from openfl_cli.workflow.participants import Aggregator

    aggregator = Aggregator(participant.name)
    aggregator.private_attributes = participant.private_attributes
    aggregator.private_attributes_callable = participant.private_attributes_callable
    aggregator.kwargs = participant.kwargs
    return aggregator


def run_experiment(
    record: ExperimentRecord, aggregator: Participant, workdir: Path, push: Push, review: Callable[[], None]
) -> None:
    """Review, run and finish `record`; whatever happens, its last event says how it ended."""
    module_name = experiment_module_name(record.package.hash)
    began = time.monotonic()
    try:
        review()
        record.status = "running"
        record.say(f"running on {', '.join(record.collaborators)}")
        folder = workdir / record.id
        module = load_experiment(record.package, folder, module_name)
        # under its module's name too: a checkpoint's reader imports the flow's classes from it
        shutil.copyfile(folder / "experiment.py", folder / f"{module_name}.py")
        flow_class = getattr(module, record.package.flow_class, None)
        if not (isinstance(flow_class, type) and issubclass(flow_class, FLSpec)):
            raise FxError(f"experiment {record.id}: {record.package.flow_class} is not an FLSpec flow")
        state = load_state(record.initial.payload, record.initial.arrays, module)
        record.initial.arrays = {}
        flow = new_flow(flow_class, state)
        flow._fx_checkpoint = record.checkpoint
        backend = EnvoyBackend(record, module, push)
        runtime = DirectorRuntime(aggregator, record.collaborators, backend)
        flow.runtime = runtime
        record.say(
            f"started in {time.monotonic() - began:.2f} s (review, the code loaded, the state decoded)"
        )
        with forwarded_output(record.line, lambda text: record.line(text, stderr=True)):
            flow.run()
        outside = backend.outside_seconds
        if outside:
            record.say(
                f"{len(outside)} round{'s' if len(outside) != 1 else ''} at the envoys,"
                f" {statistics.mean(outside):.2f} s each outside the"
                " collaborators' steps (sending and receiving the state, encoding it, queues)"
            )
        if runtime.checkpoint is not None:
            saved = runtime.checkpoint
            record.say(
                f"checkpoint: run {saved.pathspec} ({saved.tasks} tasks) in {saved.root} at the director"
            )
        record.result = dump_state(traveling_state(flow), [module_name])
        record.status = "done"
        record.emit(dpb.ExperimentEvent(finished=dpb.Finished(ok=True)))
        log.info("experiment %s finished", record.id)
    except Exception as error:
        record.status = "failed"
        message = str(error) if isinstance(error, FxError) else f"{type(error).__name__}: {error}"
        if not isinstance(error, FxError):  # the user's code failed here: they need its traceback
            trace = "".join(traceback.format_exception(error)).rstrip("\n")
            for text in trace.split("\n"):
                record.line(f"[{aggregator.name}] {text}", stderr=True)
        log.error("experiment %s failed: %s", record.id, message)
        record.emit(dpb.ExperimentEvent(finished=dpb.Finished(ok=False, error=message)))
    finally:
        unload_experiment(module_name)
        for envoy in record.collaborators:
            push(envoy, dpb.WorkItem(ended=record.id))
