"""The Envoy: a data owner's long-lived node. It reports its health to the director, reviews the
experiments sent to it, and runs its collaborator's chains of steps with its private attributes.

Its private attributes are built once, at start, from the operator's own module, and never leave this
process. An experiment's code is imported only once it is accepted here; the state a chain starts from
is decoded by the restricted unpickler, which admits the accepted code's classes and nothing unknown.
"""

from __future__ import annotations

import logging
import queue
import threading
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

from openfl_cli.envoy.config import EnvoyConfig
from openfl_cli.envoy.reviews import AdminSocket, ReviewBoard, socket_path
from openfl_cli.errors import FxError
from openfl_cli.proto import director_pb2 as dpb
from openfl_cli.transport.director.client import EnvoyClient
from openfl_cli.transport.messages import AggregatorRefused
from openfl_cli.workflow.capture import forwarded_output
from openfl_cli.workflow.engine import run_collaborator_chain
from openfl_cli.workflow.experiment import load_experiment, read_package, unload_experiment
from openfl_cli.workflow.flspec import FLSpec
from openfl_cli.workflow.ray_backend import RuntimeView
from openfl_cli.workflow.remote_types import output_to_proto, snapshot_info, transition_to_proto
from openfl_cli.workflow.snapshot import TaskSnapshot
from openfl_cli.workflow.wire import dump_state, load_state

log = logging.getLogger(__name__)
POLL_SECONDS = 30.0  # a long poll: the director answers at once when work comes


class OutputSender:
    """Sends the lines a chain prints to the director as they come, batching what piles up meanwhile."""

    def __init__(self, client: EnvoyClient, envoy: str) -> None:
        self._client = client
        self._envoy = envoy
        self._lines: queue.Queue[tuple[str, dpb.OutputLine]] = queue.Queue()
        threading.Thread(target=self._send, name="fx-envoy-output", daemon=True).start()

    def add(self, experiment: str, text: str, stderr: bool) -> None:
        self._lines.put((experiment, dpb.OutputLine(participant=self._envoy, stderr=stderr, text=text)))

    def drain(self) -> None:
        """Return once every line so far has been sent (a chain's result goes after its output)."""
        self._lines.join()

    def _send(self) -> None:
        while True:
            batch = [self._lines.get()]
            while not self._lines.empty():
                batch.append(self._lines.get_nowait())
            try:
                for experiment in dict.fromkeys(e for e, _ in batch):
                    lines = [line for e, line in batch if e == experiment]
                    self._client.send_output(dpb.OutputBatch(experiment=experiment, lines=lines))
            except Exception as error:  # output is a courtesy: the chain's result still goes
                log.warning("could not send output to the director: %s", error)
            finally:
                for _ in batch:
                    self._lines.task_done()


class Envoy:
    def __init__(self, config: EnvoyConfig, client: EnvoyClient, folder: Path) -> None:
        self.name = config.name
        self.config = config
        self.folder = folder
        self._client = client
        self._private: dict[str, Any] = config.private.participant(self.name).initialize_private_attributes()
        self._board = ReviewBoard(self.name, config.plan_review, folder, client.decide)
        self._modules: dict[str, ModuleType] = {}  # experiment id -> its loaded, accepted code
        self._current = ""
        self._stop = threading.Event()
        self._output = OutputSender(client, self.name)

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        period = self._client.health()  # retried: the envoy may start before the director
        threading.Thread(target=self._report, args=(period,), name="fx-envoy-health", daemon=True).start()
        admin = AdminSocket(socket_path(self.folder, self.name), self._board)
        admin.start()
        log.info(
            "envoy %s connected to the director at %s (review: %s)",
            self.name,
            self._client.target,
            self.config.plan_review,
        )
        print(f"envoy {self.name} connected to {self._client.target}", flush=True)
        try:
            while not self._stop.is_set():
                item = self._client.wait_work(POLL_SECONDS)
                try:
                    self._handle(item)
                except AggregatorRefused as refused:  # e.g. the experiment already failed elsewhere
                    log.warning("the director refused: %s", refused)
        finally:
            admin.stop()

    def _handle(self, item: dpb.WorkItem) -> None:
        kind = item.WhichOneof("kind")
        if kind == "review":
            self._review(item.review)
        elif kind == "chain":
            self._chain(item.chain)
        elif kind == "ended":
            self._ended(item.ended)

    def _report(self, period: float) -> None:
        while not self._stop.wait(period):  # the report's own schedule, not a poll for work
            try:
                period = self._client.health(self._current, retry=False) or period
            except Exception as error:
                log.warning("health report to the director failed: %s", error)

    def _review(self, review: dpb.Review) -> None:
        try:
            package = read_package(review.archive)
        except FxError as error:
            self._client.decide(
                dpb.Decision(
                    experiment=review.experiment, hash=review.hash, accepted=False, reason=str(error)
                )
            )
            return
        if package.hash != review.hash:
            reason = f"the archive's hash is {package.hash}, not the announced {review.hash}"
            self._client.decide(
                dpb.Decision(experiment=review.experiment, hash=review.hash, accepted=False, reason=reason)
            )
            return
        self._board.offer(review, package)

    def _chain(self, task: dpb.ChainTask) -> None:
        self._current = task.experiment
        kept: list[TaskSnapshot] = []
        result = dpb.ChainResultHeader(experiment=task.experiment, task=task.task, ok=True)
        state: dict[str, Any] = {}
        module: ModuleType | None = None
        try:
            module, flow_class = self._accepted_code(task)
            received = self._client.chain_state(task.experiment, task.task)
            start = load_state(received.payload, received.arrays, module)
            view = RuntimeView(list(task.collaborators), backend="federated")

            def on_line(stderr: bool) -> Any:
                return lambda text: self._output.add(task.experiment, text, stderr)

            with forwarded_output(on_line(False), on_line(True)):
                chain = run_collaborator_chain(
                    flow_class,
                    task.step,
                    start,
                    self.name,
                    self._private,
                    view,
                    live=True,
                    snapshots=kept.append if task.snapshots else None,
                )
            state = chain.state
            result.transition.CopyFrom(transition_to_proto(chain.transition))
            result.outputs.extend(output_to_proto(output) for output in chain.outputs)
        except Exception as error:
            result.ok = False
            result.error = (
                str(error)
                if isinstance(error, FxError)
                else "".join(traceback.format_exception(error)).rstrip()
            )
            log.error("chain %s of experiment %s failed: %s", task.task, task.experiment, error)
        self._output.drain()
        result.snapshots.extend(snapshot_info(snapshot) for snapshot in kept)
        modules = [module.__name__] if module is not None else []
        payload, arrays = dump_state({"state": state, "snapshots": [s.values for s in kept]}, modules)
        self._client.send_chain_result(result, payload, arrays)

    def _accepted_code(self, task: dpb.ChainTask) -> tuple[ModuleType, type[FLSpec]]:
        """The experiment's module (imported on its first chain) and flow class, if accepted here."""
        package = self._board.accepted(task.experiment, task.hash)
        if package is None:
            raise FxError(
                f"envoy {self.name} has not accepted experiment {task.experiment} ({task.hash[:12]})"
            )
        module = self._modules.get(task.experiment)
        if module is None:
            module = load_experiment(
                package, self.folder / "experiments" / task.experiment, f"fx_experiment_{package.hash[:16]}"
            )
            self._modules[task.experiment] = module
        flow_class = getattr(module, package.flow_class, None)
        if not (isinstance(flow_class, type) and issubclass(flow_class, FLSpec)):
            raise FxError(f"experiment {task.experiment}: {package.flow_class} is not an FLSpec flow")
        return module, flow_class

    def _ended(self, experiment: str) -> None:
        module = self._modules.pop(experiment, None)
        if module is not None:
            unload_experiment(module.__name__)
        self._board.forget(experiment)
        self._current = ""
        log.info("experiment %s ended", experiment)
