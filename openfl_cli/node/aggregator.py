"""`fx aggregator start`: build the aggregator from a plan, serve it over gRPC until the experiment ends."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from openfl_cli.errors import UsageError
from openfl_cli.federation.aggregator import Aggregator, BestMetricRule, RoundOutputs
from openfl_cli.federation.collaborator import is_training
from openfl_cli.federation.progress import AggregatorReporter, ConsoleReporter
from openfl_cli.federation.update import is_optimizer_tensor
from openfl_cli.node.common import (
    address_of,
    build_reference_runner,
    existing,
    load_plan,
    metric_callback,
    wire_task,
)

if TYPE_CHECKING:
    import numpy as np

    from openfl_cli.plan import Plan

log = logging.getLogger(__name__)

SERVER_STOP_GRACE = 3.0  # seconds for answers in flight (the last QUITs) when the server stops


@dataclass(frozen=True)
class AggregatorRun:
    rounds_to_train: int
    last_round: int  # rounds completed
    last_state_path: Path
    best_state_path: Path
    finished: bool


def build_aggregator(
    plan: Plan, reporter: AggregatorReporter | None = None, max_concurrent_results: int = 1
) -> tuple[Aggregator, RoundOutputs]:
    """The aggregator of `plan`, resumed from its persistent state when there is one."""
    from openfl_cli.federation.metrics import open_metric_writers
    from openfl_cli.federation.state import open_state_store
    from openfl_cli.tensors.snapshot import load_snapshot

    settings = plan.aggregator_settings
    if not plan.collaborators:
        raise UsageError("plan/cols.yaml lists no collaborators: add them with `fx collaborator create`")
    init_path = plan.resolve_path(settings.init_state_path)
    if not init_path.is_file():
        raise UsageError(f"{init_path}: no initial model; run `fx plan initialize` first")
    store = None
    if settings.persist_checkpoint:
        store = open_state_store(
            plan.resolve_path(settings.persistent_db_path),
            plan.hash,
            db_store_rounds=settings.db_store_rounds,
        )
    callback = metric_callback(plan, settings.log_metric_callback)
    writer = open_metric_writers(plan.workspace / "logs", write_logs=settings.write_logs, callback=callback)
    best_task = plan.tasks.get(settings.best_metric_task)
    rule = BestMetricRule(
        settings.best_metric_task,
        settings.best_metric,
        settings.best_metric_higher_is_better,
        judges_start_model=best_task is None
        or (not is_training(best_task.function) and best_task.kwargs.get("apply", "global") == "global"),
    )
    outputs = RoundOutputs(
        last_path=plan.resolve_path(settings.last_state_path),
        best_path=plan.resolve_path(settings.best_state_path),
        rule=rule,
        store=store,
        writer=writer,
        save_native=_native_saver(plan) if settings.save_native_model else None,
    )
    try:
        assigner = plan.build_assigner()
        assigner.bind(plan.collaborators)
        tasks = {name: wire_task(plan, name) for name in assigner.tasks}
        functions = {name: plan.build_aggregation_function(name) for name in tasks}
        resume = outputs.resume_point()
        model: dict[str, np.ndarray] = load_snapshot(init_path).tensors
        start = 0
        if resume is not None:
            model, start = resume.model, resume.next_round
            for name, state in resume.aggregation_state.items():
                if name in functions and state:
                    functions[name].load_state_dict(state)
            log.info(
                "resuming after round %d of %d (from %s)",
                start,
                settings.rounds_to_train,
                settings.persistent_db_path,
            )
        elif plan.collaborator_settings.opt_treatment == "CONTINUE_GLOBAL":
            model = _with_optimizer_state(plan, model)
        aggregator = Aggregator(
            plan_hash=plan.hash,
            collaborators=plan.collaborators,
            tasks=tasks,
            assigner=assigner,
            straggler=plan.build_straggler_policy(),
            functions=functions,
            model=model,
            rounds_to_train=settings.rounds_to_train,
            outputs=outputs,
            start_round=start,
            use_delta_updates=plan.collaborator_settings.use_delta_updates,
            name=address_of(plan)[0],
            quit_grace=min(30.0, max(5.0, 2 * plan.network_settings.client_reconnect_interval)),
            max_concurrent_results=max_concurrent_results,
            reporter=reporter,
        )
    except BaseException:
        outputs.close()
        raise
    return aggregator, outputs


def start_aggregator(
    plan_path: str | Path = "plan/plan.yaml",
    cols_path: str | Path = "plan/cols.yaml",
    data_path: str | Path = "plan/data.yaml",
    reporter: AggregatorReporter | None = None,
) -> AggregatorRun:
    from openfl_cli.transport.limits import Limits
    from openfl_cli.transport.server import AggregatorServer
    from openfl_cli.utils.allocator import tune_for_aggregator

    tune_for_aggregator(Limits().chunk_bytes)
    plan = load_plan(plan_path, cols_path, existing(data_path))
    network = plan.network_settings
    aggregator, outputs = build_aggregator(plan, reporter or ConsoleReporter())
    try:
        if aggregator.finished:
            log.warning(
                "the experiment is already complete (%d rounds in %s); telling collaborators to stop."
                " Delete that file to train again.",
                aggregator.rounds_to_train,
                plan.aggregator_settings.persistent_db_path,
            )
        address, port = address_of(plan)
        tls = None
        if network.use_tls:
            from openfl_cli.pki.layout import aggregator_tls_paths

            tls = aggregator_tls_paths(plan.workspace, address)
        server = AggregatorServer(
            aggregator,
            network.bind_addr,
            port,
            tls,
            use_tls=network.use_tls,
            require_client_auth=network.require_client_auth,
            authorizer=_authorizer(plan, cols_path, network.use_tls and network.require_client_auth),
            expected_collaborators=len(plan.collaborators),
        )
        server.start()
        print(
            f"aggregator serving {address}:{port} (plan {plan.hash[:12]}...,"
            f" {len(plan.collaborators)} collaborators)",
            flush=True,
        )
        try:
            with _stop_on_signals(aggregator):
                aggregator.run()
        finally:
            server.stop(SERVER_STOP_GRACE)
    finally:
        outputs.close()
    settings = plan.aggregator_settings
    return AggregatorRun(
        settings.rounds_to_train,
        aggregator.round_number,
        outputs.last_path,
        outputs.best_path,
        aggregator.finished,
    )


def _authorizer(plan: Plan, cols_path: str | Path, with_certificates: bool) -> object:
    if with_certificates:
        from openfl_cli.pki.credentials import Authorizer

        return Authorizer(plan.workspace, Path(cols_path).absolute())
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


def _native_saver(plan: Plan) -> Callable[[Mapping[str, np.ndarray]], Path]:
    def save(model: Mapping[str, np.ndarray]) -> Path:
        runner = build_reference_runner(plan)
        runner.set_tensor_dict(model, with_opt_vars=False)
        return runner.save_native(plan.resolve_path(plan.aggregator_settings.native_model_path))

    return save


def _with_optimizer_state(plan: Plan, model: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """CONTINUE_GLOBAL aggregates optimizer tensors too: start them from the runner's initial state."""
    state = build_reference_runner(plan).get_tensor_dict(with_opt_vars=True)
    extra = {
        name: value for name, value in state.items() if is_optimizer_tensor(name) and name not in model
    }
    if extra:
        log.info("CONTINUE_GLOBAL: %d optimizer tensor(s) join the global model", len(extra))
    return {**model, **extra}
