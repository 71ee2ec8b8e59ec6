"""`LocalRuntime`: a flow's aggregator and collaborators on this machine, in one process (collaborators
one after the other) or on Ray (see `ray_backend.py`)."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from openfl_cli.errors import UsageError
from openfl_cli.workflow.capture import StepOutput
from openfl_cli.workflow.checkpoint import Checkpoint, CheckpointSummary
from openfl_cli.workflow.engine import (
    ChainResult,
    narrow,
    public_state,
    run_collaborator_chain,
    run_step,
    selected,
)
from openfl_cli.workflow.flow_graph import flow_graph
from openfl_cli.workflow.flspec import FLSpec, Transition
from openfl_cli.workflow.graph import check_flow, check_join
from openfl_cli.workflow.inputs import join_inputs
from openfl_cli.workflow.participants import Aggregator, Collaborator
from openfl_cli.workflow.snapshot import SnapshotSink

BACKENDS = ("single_process", "ray")


class Backend(Protocol):
    """Runs the collaborators' chains of one `foreach`; yields the results in the order of `names`
    (as they come, so that the runtime can store each before the next arrives)."""

    def setup(self, collaborators: Sequence[Collaborator]) -> None: ...

    def run_chains(
        self,
        flow_class: type[FLSpec],
        step: str,
        state: dict[str, Any],
        names: Sequence[str],
        runtime: Any,
        sink: SnapshotSink | None = None,
    ) -> Iterable[ChainResult]: ...

    def close(self) -> None: ...


class SingleProcessBackend:
    """Everything in this process, collaborators one after the other. A collaborator's working copy of
    the flow exists only while its chain runs."""

    def __init__(self) -> None:
        self._private: dict[str, dict[str, Any]] = {}

    def setup(self, collaborators: Sequence[Collaborator]) -> None:
        self._private = {c.name: c.initialize_private_attributes() for c in collaborators}

    def run_chains(
        self,
        flow_class: type[FLSpec],
        step: str,
        state: dict[str, Any],
        names: Sequence[str],
        runtime: Any,
        sink: SnapshotSink | None = None,
    ) -> Iterator[ChainResult]:
        for name in names:
            private = self._private[name]
            yield run_collaborator_chain(
                flow_class, step, copy.deepcopy(state), name, private, runtime, snapshots=sink
            )

    def close(self) -> None:
        self._private = {}


class LocalRuntime:
    def __init__(
        self,
        aggregator: Aggregator | None = None,
        collaborators: Sequence[Collaborator] | None = None,
        backend: str = "single_process",
        join_memory_budget: int = 256 << 20,
        **backend_options: Any,
    ) -> None:
        """`join_memory_budget`: bytes of the collaborators' results a join keeps in memory; past it
        their large attributes wait on disk until the join reads them (see `inputs.py`)."""
        if backend not in BACKENDS:
            raise UsageError(f"LocalRuntime: backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        self.aggregator = aggregator or Aggregator()
        self._collaborators = list(collaborators or [])
        names = [c.name for c in self._collaborators]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise UsageError(f"LocalRuntime: collaborator names must be unique: {', '.join(duplicates)}")
        if self.aggregator.name in names:
            raise UsageError(
                f"LocalRuntime: {self.aggregator.name!r} names both the aggregator and a collaborator"
            )
        self.backend = backend
        self.backend_options = backend_options
        self.join_memory_budget = int(join_memory_budget)
        self.step_outputs: list[StepOutput] = []  # every step's output, in the order the steps ended
        self.checkpoint: CheckpointSummary | None = None  # the last run's, with checkpoint=True

    @property
    def collaborators(self) -> list[str]:
        return [c.name for c in self._collaborators]

    def _backend(self) -> Backend:
        if self.backend == "ray":
            from openfl_cli.workflow.ray_backend import RayBackend

            return RayBackend(aggregator=self.aggregator, **self.backend_options)
        return SingleProcessBackend()

    def execute(self, flow: FLSpec) -> None:
        flow_class = type(flow)
        steps = check_flow(flow_class)
        checkpoint = self._checkpoint(flow) if flow.checkpoint else None
        backend = self._backend()
        try:
            backend.setup(self._collaborators)
            private = self.aggregator.initialize_private_attributes()
            flow.__dict__.update(private)
            try:
                self._run(flow, flow_class, steps, backend, set(private), checkpoint)
            finally:
                backend.close()
                for name in private:  # the flow returns the aggregator's attributes, never its private ones
                    flow.__dict__.pop(name, None)
        finally:
            if checkpoint is not None:
                self.checkpoint = checkpoint.close()

    def _checkpoint(self, flow: FLSpec) -> Checkpoint:
        graph = flow_graph(type(flow))
        joins = [node.name for node in graph.steps.values() if node.join]
        try:
            checkpoint = Checkpoint(type(flow).__name__, graph.metaflow_info(), joins)
        except OSError as err:
            raise UsageError(f"checkpoint: cannot write the Metaflow datastore: {err}") from err
        checkpoint.parameters(public_state(flow, ()))
        return checkpoint

    def _run(
        self,
        flow: FLSpec,
        flow_class: type[FLSpec],
        steps: Mapping[str, str],
        backend: Backend,
        private: set[str],
        checkpoint: Checkpoint | None = None,
    ) -> None:
        me = self.aggregator.name
        sink = checkpoint.submit if checkpoint is not None else None

        def here(step: str, inputs: Sequence[Any] | None = None) -> Transition | None:
            transition, output = run_step(flow, step, me, inputs=inputs, private=private, snapshots=sink)
            self.step_outputs.append(output)
            return transition

        transition = here("start")
        while transition is not None:
            step = transition.source
            if steps[transition.target] == "aggregator":
                if transition.foreach is not None:
                    raise UsageError(f"step {step}: foreach fans out to collaborator steps only")
                narrow(flow, private, transition)
                transition = here(transition.target)
                continue
            if transition.foreach is None:
                raise UsageError(
                    f"step {step}: the collaborator step {transition.target} is reached without foreach"
                )
            names = self._foreach_names(flow, transition)
            state = selected(public_state(flow, private), transition)
            with join_inputs(self.join_memory_budget) as store:
                joins: set[str] = set()
                for result in backend.run_chains(flow_class, transition.target, state, names, self, sink):
                    joins.add(result.transition.target)
                    self.step_outputs.extend(result.outputs)
                    store.add(result.state)
                join = self._join_of(joins, transition)
                check_join(flow_class, join)
                transition = here(join, store.inputs)

    def _foreach_names(self, flow: FLSpec, transition: Transition) -> list[str]:
        where = f"step {transition.source}: foreach={transition.foreach!r}"
        value = getattr(flow, transition.foreach or "", None)
        if not isinstance(value, list | tuple) or not value or not all(isinstance(v, str) for v in value):
            raise UsageError(f"{where} must name a non-empty list of collaborator names, got {value!r}")
        unknown = sorted(set(value) - set(self.collaborators))
        if unknown:
            raise UsageError(f"{where} lists {', '.join(unknown)}, not collaborators of this runtime")
        return list(value)

    @staticmethod
    def _join_of(joins: set[str], transition: Transition) -> str:
        targets = sorted(joins)
        if len(targets) != 1:
            raise UsageError(
                f"the collaborators of step {transition.target} came back to different steps:"
                f" {', '.join(targets)}"
            )
        return targets[0]

    def __repr__(self) -> str:
        return f"LocalRuntime(backend={self.backend!r}, collaborators={self.collaborators})"
