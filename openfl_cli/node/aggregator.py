"""`fx aggregator start`: build the aggregator from a plan, serve it over gRPC until the experiment ends."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from openfl_cli.errors import PlanError, UsageError
from openfl_cli.federation.aggregator import Aggregator, BestMetricRule, RoundOutputs
from openfl_cli.federation.progress import AggregatorReporter, ConsoleReporter
from openfl_cli.federation.specs import ComponentSpec
from openfl_cli.federation.update import is_optimizer_tensor
from openfl_cli.node.common import address_of, build_reference_runner, existing, load_plan, metric_callback
from openfl_cli.plan.aliases import WEIGHTED_AVERAGE

if TYPE_CHECKING:
    import numpy as np

    from openfl_cli.federation.aggregation.function import AggregationFunction
    from openfl_cli.federation.aggregator.core import Roster
    from openfl_cli.federation.assigner import TaskAssigner
    from openfl_cli.federation.specs import ComponentBuilder, ExperimentSpec
    from openfl_cli.federation.straggler import StragglerHandling
    from openfl_cli.plan import Plan
    from openfl_cli.transport.messages import TaskSpec
    from openfl_cli.utils.lock import ProcessLock

log = logging.getLogger(__name__)


class MemberAuthorizer(Protocol):
    """The aggregator's authorizer, which also tells who may take part right now."""

    def check(self, context: Any, claimed_sender: str) -> None: ...
    def members(self) -> frozenset[str] | None: ...


AGGREGATOR_LOCK = "local_state/aggregator.lock"  # held by the running aggregator of a workspace
SERVER_STOP_GRACE = 3.0  # seconds for answers in flight (the last QUITs) when the server stops


@dataclass(frozen=True)
class AggregatorRun:
    rounds_to_train: int
    last_round: int  # rounds completed
    last_state_path: Path
    best_state_path: Path | None  # None: no best model was written
    finished: bool


def build_aggregator(
    spec: ExperimentSpec,
    builder: ComponentBuilder,
    reporter: AggregatorReporter | None = None,
    max_concurrent_results: int = 1,
    roster: Roster | None = None,
) -> tuple[Aggregator, RoundOutputs]:
    """The aggregator of `spec`, resumed from its persistent state when there is one. `roster`: who
    may take part now (a collaborator it drops leaves the running round)."""
    from openfl_cli.tensors.snapshot import load_snapshot

    agg = spec.aggregator
    if not agg.collaborators:
        raise UsageError("plan/cols.yaml lists no collaborators: add them with `fx collaborator create`")
    init_path = spec.resolve(agg.outputs.init_path)
    if not init_path.is_file():
        raise UsageError(f"{init_path}: no initial model; run `fx plan initialize` first")
    outputs = open_outputs(spec, builder)
    try:
        assigner: TaskAssigner = builder.build(agg.assigner, optional_injected=_assigner_extras(spec))
        assigner.bind(list(agg.collaborators))
        tasks = {name: _task(spec, name) for name in assigner.tasks}
        functions = {name: _aggregation_function(spec, builder, name) for name in tasks}
        resume = outputs.resume_point()
        model: dict[str, np.ndarray] = load_snapshot(init_path).tensors
        start = 0
        if resume is not None:
            _check_resumed_model(spec, model, resume.model)
            model, start = resume.model, resume.next_round
            for name, state in resume.aggregation_state.items():
                if name in functions and state:
                    functions[name].load_state_dict(state)
            log.info(
                "resuming after round %d of %d (from %s)",
                start,
                agg.rounds_to_train,
                agg.outputs.persistent_db,
            )
        elif agg.opt_treatment == "CONTINUE_GLOBAL":
            model = _with_optimizer_state(spec, builder, model)
        straggler: StragglerHandling = builder.build(agg.straggler)
        aggregator = Aggregator(
            plan_hash=agg.plan_hash,
            collaborators=agg.collaborators,
            tasks=tasks,
            assigner=assigner,
            straggler=straggler,
            functions=functions,
            model=model,
            rounds_to_train=agg.rounds_to_train,
            outputs=outputs,
            start_round=start,
            use_delta_updates=agg.use_delta_updates,
            name=agg.name,
            quit_grace=min(30.0, max(5.0, 2 * spec.network.reconnect_interval)),
            max_concurrent_results=max_concurrent_results,
            reporter=reporter,
            roster=roster,
        )
    except BaseException:
        outputs.close()
        raise
    return aggregator, outputs


def _check_resumed_model(
    spec: ExperimentSpec, initial: Mapping[str, np.ndarray], resumed: Mapping[str, np.ndarray]
) -> None:
    """The saved state's model must be the initial model's kind (same tensors, same shapes): a state
    database left by another plan or model would otherwise be served to every collaborator."""
    from openfl_cli.federation.model_fit import misfit

    outputs = spec.aggregator.outputs
    problem = misfit(initial, resumed) or misfit(
        {name: value for name, value in resumed.items() if not is_optimizer_tensor(name)}, initial
    )
    if problem:
        raise UsageError(
            f"{outputs.persistent_db}: its saved model does not fit {outputs.init_path} ({problem});"
            " delete it to start the experiment over, or restore the initial model it was trained from"
        )


def open_outputs(spec: ExperimentSpec, builder: ComponentBuilder) -> RoundOutputs:
    """Snapshots, metric writers and the persistent state store of `spec`'s aggregator."""
    from openfl_cli.federation.metrics import open_metric_writers
    from openfl_cli.federation.state import open_state_store

    agg, outputs = spec.aggregator, spec.aggregator.outputs
    store = None
    if outputs.persist_checkpoint:
        store = open_state_store(
            spec.resolve(outputs.persistent_db), agg.plan_hash, db_store_rounds=outputs.db_store_rounds
        )
    callback = metric_callback(builder, outputs.metric_callback)
    writer = open_metric_writers(
        spec.resolve(outputs.logs_dir), write_logs=outputs.write_logs, callback=callback
    )
    rule = BestMetricRule(
        outputs.best.task,
        outputs.best.metric,
        outputs.best.higher_is_better,
        judges_start_model=agg.best_task_judges_start_model,
    )
    return RoundOutputs(
        last_path=spec.resolve(outputs.last_path),
        best_path=spec.resolve(outputs.best_path),
        rule=rule,
        store=store,
        writer=writer,
        save_native=_native_saver(spec, builder) if outputs.save_native_model else None,
    )


def _assigner_extras(spec: ExperimentSpec) -> dict[str, object]:
    # what an assigner may need besides its settings; given only when its constructor names it
    agg = spec.aggregator
    return {
        "tasks": dict(agg.tasks),
        "authorized_cols": list(agg.collaborators),
        "collaborators": list(agg.collaborators),
        "rounds_to_train": agg.rounds_to_train,
    }


def _task(spec: ExperimentSpec, name: str) -> TaskSpec:
    try:
        return spec.aggregator.tasks[name]
    except KeyError:
        raise PlanError(spec.source, f"tasks.{name}", "the assigner names a task the plan lacks") from None


def _aggregation_function(spec: ExperimentSpec, builder: ComponentBuilder, task: str) -> AggregationFunction:
    component = spec.aggregator.aggregation.get(task) or ComponentSpec(
        ("tasks", task, "aggregation_type"), WEIGHTED_AVERAGE
    )
    function: AggregationFunction = builder.build(component)
    return function


def start_aggregator(
    plan_path: str | Path = "plan/plan.yaml",
    cols_path: str | Path = "plan/cols.yaml",
    data_path: str | Path = "plan/data.yaml",
    reporter: AggregatorReporter | None = None,
) -> AggregatorRun:
    from openfl_cli.transport.limits import Limits
    from openfl_cli.utils.allocator import tune_for_aggregator
    from openfl_cli.utils.fs import remove_stale_temporaries

    tune_for_aggregator(Limits().chunk_bytes)
    plan = load_plan(plan_path, cols_path, existing(data_path))
    spec = plan.experiment()
    # before anything opens the state database or binds: one aggregator per workspace
    with workspace_lock(spec.workspace):
        remove_stale_temporaries(output_folders(spec))
        return _serve(spec, plan, cols_path, reporter)


def workspace_lock(workspace: Path) -> ProcessLock:
    """The lock on `workspace`'s aggregator state, taken; `UsageError` naming the holder when another
    aggregator has it. Release it (or use it as a context manager) when done."""
    from openfl_cli.utils.lock import LockHeld, ProcessLock

    lock = ProcessLock(workspace / AGGREGATOR_LOCK)
    try:
        lock.acquire()
    except LockHeld as held:
        raise UsageError(
            f"{workspace}: another aggregator ({held.owner.describe()}) runs in this workspace"
        ) from None
    return lock


def output_folders(spec: ExperimentSpec) -> list[Path]:
    """The folders the aggregator of `spec` writes into (snapshots, native model, state, logs)."""
    outputs = spec.aggregator.outputs
    native = spec.resolve(outputs.native_model_path)
    folders = [
        spec.resolve(path).parent
        for path in (outputs.init_path, outputs.last_path, outputs.best_path, outputs.persistent_db)
    ]
    folders += [native.parent, native, spec.resolve(outputs.logs_dir)]
    return list(dict.fromkeys(folders))


def _serve(
    spec: ExperimentSpec, plan: Plan, cols_path: str | Path, reporter: AggregatorReporter | None
) -> AggregatorRun:
    from openfl_cli.transport.server import AggregatorServer

    network = spec.network
    authorizer = _authorizer(plan, cols_path, network.use_tls and network.require_client_auth)
    aggregator, outputs = build_aggregator(
        spec, plan, reporter or ConsoleReporter(), roster=authorizer.members
    )
    try:
        if aggregator.finished:
            log.warning(
                "the experiment is already complete (%d rounds in %s); telling collaborators to stop."
                " Delete that file to train again.",
                aggregator.rounds_to_train,
                spec.aggregator.outputs.persistent_db,
            )
        address, port = address_of(spec.network)
        tls = None
        if network.use_tls:
            from openfl_cli.pki.credentials import aggregator_material
            from openfl_cli.pki.layout import aggregator_tls_paths

            tls = aggregator_material(aggregator_tls_paths(spec.workspace, address))
        server = AggregatorServer(
            aggregator,
            network.bind_addr,
            port,
            tls,
            use_tls=network.use_tls,
            require_client_auth=network.require_client_auth,
            authorizer=authorizer,
            expected_collaborators=len(spec.collaborators),
        )
        server.start()
        print(
            f"aggregator serving {address}:{port} (plan {spec.plan_hash[:12]}...,"
            f" {len(spec.collaborators)} collaborators)",
            flush=True,
        )
        try:
            with _stop_on_signals(aggregator):
                aggregator.run()
        finally:
            server.stop(SERVER_STOP_GRACE)
    finally:
        outputs.close()
    return AggregatorRun(
        spec.aggregator.rounds_to_train,
        aggregator.round_number,
        outputs.last_path,
        outputs.best_written(),
        aggregator.finished,
    )


def _authorizer(plan: Plan, cols_path: str | Path, with_certificates: bool) -> MemberAuthorizer:
    if with_certificates:
        from openfl_cli.pki.credentials import Authorizer as CertificateAuthorizer

        return CertificateAuthorizer(plan.workspace, Path(cols_path).absolute())
    return _RosterAuthorizer(Path(cols_path).absolute())


class _RosterAuthorizer:
    """Without client certificates only the name can be checked against cols.yaml (re-read per call)."""

    def __init__(self, cols_path: Path) -> None:
        self.cols_path = cols_path

    def check(self, context: object, claimed_sender: str) -> None:
        from openfl_cli.pki.errors import NotAuthorized
        from openfl_cli.pki.roster import read_collaborators

        if claimed_sender not in read_collaborators(self.cols_path):
            raise NotAuthorized(f"{claimed_sender!r} is not in {self.cols_path.name} of this federation")

    def members(self) -> frozenset[str] | None:
        from openfl_cli.pki.roster import read_collaborators

        try:
            return frozenset(read_collaborators(self.cols_path))
        except Exception:
            return None  # unreadable for a moment (being rewritten): nobody leaves on that


@contextmanager
def _stop_on_signals(aggregator: Aggregator) -> Iterator[None]:
    """SIGTERM/SIGINT end the aggregator cleanly, without telling collaborators to quit (they wait for
    a restart, which resumes from the persistent state)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, frame: object) -> None:
        log.warning("signal %d: stopping the aggregator (a restart resumes the experiment)", signum)
        aggregator.stop()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _native_saver(
    spec: ExperimentSpec, builder: ComponentBuilder
) -> Callable[[Mapping[str, np.ndarray]], Path]:
    def save(model: Mapping[str, np.ndarray]) -> Path:
        runner = build_reference_runner(spec, builder)
        runner.set_tensor_dict(model, with_opt_vars=False)
        return runner.save_native(spec.resolve(spec.aggregator.outputs.native_model_path))

    return save


def _with_optimizer_state(
    spec: ExperimentSpec, builder: ComponentBuilder, model: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """CONTINUE_GLOBAL aggregates optimizer tensors too: start them from the runner's initial state."""
    state = build_reference_runner(spec, builder).get_tensor_dict(with_opt_vars=True)
    extra = {name: value for name, value in state.items() if is_optimizer_tensor(name) and name not in model}
    if extra:
        log.info("CONTINUE_GLOBAL: %d optimizer tensor(s) join the global model", len(extra))
    return {**model, **extra}
