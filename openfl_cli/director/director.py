"""The Director: the long-lived central node of the Workflow API's federations.

It keeps the envoys' health, takes experiments from experimenters, has each one reviewed by the
envoys it names, and runs them one after another (a flow's aggregator steps print to this process's
output, which is the experiment's while it runs). Every method receives a sender the transport has
already authenticated; what an envoy may touch is checked here: only its own tasks and decisions.
"""

from __future__ import annotations

import functools
import logging
import queue
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

from openfl_cli.director.config import DirectorConfig
from openfl_cli.director.envoys import EnvoyRegistry
from openfl_cli.director.experiment import ExperimentFailed, ExperimentRecord
from openfl_cli.director.run import run_experiment
from openfl_cli.errors import FxError
from openfl_cli.proto import director_pb2 as dpb
from openfl_cli.transport.director.service import OutgoingState
from openfl_cli.transport.director.state_stream import ReceivedState
from openfl_cli.transport.messages import RefusalCode, Refused
from openfl_cli.utils.names import check_collaborator_name
from openfl_cli.workflow.experiment import read_package
from openfl_cli.workflow.participants import Participant

log = logging.getLogger(__name__)
_STOP = ""
KEPT_RESULTS = 2  # the final states of the last experiments stay for their users to fetch


class Director:
    def __init__(self, config: DirectorConfig, workdir: Path) -> None:
        self.config = config
        self.workdir = workdir
        self.registry = EnvoyRegistry(config.health_period)
        self.registry.on_offline(self._envoy_lost)
        self._aggregator: Participant = config.aggregator.participant("aggregator")
        self._lock = threading.Lock()
        self._experiments: dict[str, ExperimentRecord] = {}
        self._queue: queue.Queue[str] = queue.Queue()
        self._runner = threading.Thread(target=self._run_queue, name="fx-experiments", daemon=True)
        self._runner.start()

    def close(self) -> None:
        self._queue.put(_STOP)
        self.registry.stop()

    # -- EnvoyLinkService ------------------------------------------------------------------------------

    def health(self, envoy: str, report: dpb.HealthReport) -> float:
        self.registry.seen(envoy, report.experiment)
        return self.registry.period

    def wait_work(self, envoy: str, wait_seconds: float) -> dpb.WorkItem:
        return self.registry.take(envoy, wait_seconds)

    def decide(self, envoy: str, decision: dpb.Decision) -> None:
        record = self._experiment_of(envoy, decision.experiment)
        if decision.hash != record.package.hash:
            raise Refused(RefusalCode.INVALID, f"experiment {record.id} has hash {record.package.hash}")
        with record.changed:
            if envoy in record.decisions:
                raise Refused(RefusalCode.DUPLICATE, f"{envoy} already decided on experiment {record.id}")
            verdict = (
                "accepted" if decision.accepted else f"rejected it: {decision.reason or 'no reason given'}"
            )
            record.say(f"envoy {envoy} {verdict}")  # under the lock: before the review's outcome is told
            record.decisions[envoy] = decision
            record.changed.notify_all()
        log.info("experiment %s: envoy %s %s", record.id, envoy, verdict)

    def chain_state(self, envoy: str, experiment: str, task: str) -> OutgoingState:
        record = self._experiment_of(envoy, experiment)
        with record.changed:
            found = record.tasks.get(task)
        if found is None or found.envoy != envoy:
            raise Refused(
                RefusalCode.UNKNOWN_TASK, f"experiment {experiment} has no task {task!r} for {envoy}"
            )
        return dpb.StateHeader(task=found.task), found.payload, found.arrays

    def chain_result(self, envoy: str, result: ReceivedState) -> None:
        if not result.header.HasField("result"):
            raise Refused(RefusalCode.INVALID, "a chain result's header must be a result")
        header = result.header.result
        record = self._experiment_of(envoy, header.experiment)
        with record.changed:
            found = record.tasks.get(header.task)
            if found is None or found.envoy != envoy:
                raise Refused(RefusalCode.UNKNOWN_TASK, f"experiment {record.id} has no task {header.task!r}")
            if found.done:
                raise Refused(RefusalCode.DUPLICATE, f"task {header.task} of {envoy} already ended")
            found.result = result
            record.changed.notify_all()

    def output(self, envoy: str, batch: dpb.OutputBatch) -> None:
        record = self._experiment_of(envoy, batch.experiment)
        for line in batch.lines:
            record.line(line.text, stderr=line.stderr, participant=envoy)

    # -- ExperimentsService ----------------------------------------------------------------------------

    def list_envoys(self, user: str) -> dpb.EnvoyList:
        return self.registry.listing()

    def submit(self, user: str, submission: ReceivedState) -> dpb.Submitted:
        if not submission.header.HasField("submission"):
            raise Refused(RefusalCode.INVALID, "a submission's header must be a submission")
        header = submission.header.submission
        names = list(header.collaborators)
        try:
            if not names or len(set(names)) != len(names):
                raise FxError("collaborators must be a non-empty list of distinct envoy names")
            for name in names:
                check_collaborator_name(name)
            package = read_package(header.archive)
        except FxError as error:
            raise Refused(RefusalCode.INVALID, str(error)) from None
        if package.flow_class != header.flow_class:
            raise Refused(
                RefusalCode.INVALID, f"the package's flow is {package.flow_class}, not {header.flow_class}"
            )
        experiment = f"{package.flow_class}-{secrets.token_hex(4)}"
        record = ExperimentRecord(experiment, user, package, names, header.checkpoint, submission)
        with self._lock:
            self._experiments[experiment] = record
        record.say(f"experiment {experiment} (hash {package.hash}) queued by {user}")
        log.info("experiment %s from %s for %s: hash %s", experiment, user, ", ".join(names), package.hash)
        self._queue.put(experiment)
        return dpb.Submitted(experiment=experiment, hash=package.hash)

    def watch(self, user: str, experiment: str) -> Iterator[dpb.ExperimentEvent]:
        return self._own(user, experiment).watch()

    def result(self, user: str, experiment: str) -> OutgoingState:
        record = self._own(user, experiment)
        if record.result is None:
            raise Refused(RefusalCode.LATE, f"experiment {experiment} has no result ({record.status})")
        payload, arrays = record.result
        return dpb.StateHeader(final=dpb.ResultHeader(experiment=experiment)), payload, arrays

    # -- running ---------------------------------------------------------------------------------------

    def _run_queue(self) -> None:
        while (experiment := self._queue.get()) != _STOP:
            with self._lock:
                record = self._experiments[experiment]
            run_experiment(
                record,
                self._aggregator,
                self.workdir,
                self.registry.push,
                functools.partial(self._review, record),
            )
            record.initial.arrays = {}
            with self._lock:
                ended = [r for r in self._experiments.values() if r.result is not None]
                for old in ended[:-KEPT_RESULTS]:
                    old.result = None

    def _review(self, record: ExperimentRecord) -> None:
        """Send the experiment to its envoys; return once all accepted it, or raise naming who did not."""
        offline = [name for name in record.collaborators if not self.registry.is_online(name)]
        if offline:
            online = ", ".join(self.registry.online()) or "none"
            raise ExperimentFailed(f"envoy {', '.join(offline)} not online (online: {online})")
        record.status = "reviewing"
        review = dpb.Review(
            experiment=record.id,
            hash=record.package.hash,
            archive=record.package.archive,
            submitted_by=record.user,
            name=record.name,
        )
        for envoy in record.collaborators:
            self.registry.push(envoy, dpb.WorkItem(review=review))
        record.say(f"waiting for {', '.join(record.collaborators)} to accept it")

        def decided() -> bool:
            rejected = any(not d.accepted for d in record.decisions.values())
            return rejected or len(record.decisions) == len(record.collaborators)

        record.wait_until(decided, "while the envoys reviewed it", timeout=self.config.review_timeout)
        refusals = [(name, d) for name, d in record.decisions.items() if not d.accepted]
        if refusals:
            name, decision = refusals[0]
            reason = decision.reason or "no reason given"
            raise ExperimentFailed(f"envoy {name} rejected experiment {record.package.hash[:12]}: {reason}")

    def _envoy_lost(self, envoy: str, silent: float) -> None:
        with self._lock:
            records = [r for r in self._experiments.values() if r.finished is None]
        for record in records:
            record.envoy_lost(envoy, silent)

    def _experiment_of(self, envoy: str, experiment: str) -> ExperimentRecord:
        with self._lock:
            record = self._experiments.get(experiment)
        if record is None or envoy not in record.collaborators:
            raise Refused(RefusalCode.UNKNOWN_TASK, f"no experiment {experiment!r} for envoy {envoy}")
        return record

    def _own(self, user: str, experiment: str) -> ExperimentRecord:
        with self._lock:
            record = self._experiments.get(experiment)
        if record is None:
            raise Refused(RefusalCode.UNKNOWN_TASK, f"no experiment {experiment!r}")
        if record.user != user:
            raise Refused(RefusalCode.NOT_AUTHORIZED, f"experiment {experiment} belongs to another user")
        return record
