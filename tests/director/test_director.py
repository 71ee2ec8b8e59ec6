"""The Director in-process, without a network: a tiny flow submitted as the FederatedRuntime submits it,
envoys played by hand (in threads or step by step), and what the director checks: the envoys' review,
each envoy touching only its own tasks and decisions, each user only their own experiments, and an
experiment that fails naming who rejected it, who is offline, or which step failed where."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from openfl_cli.director.config import load_director_config
from openfl_cli.director.director import KEPT_RESULTS, Director
from openfl_cli.proto import director_pb2 as dpb
from openfl_cli.transport.director.state_stream import ReceivedState
from openfl_cli.transport.messages import RefusalCode, Refused
from openfl_cli.workflow import remote_types
from openfl_cli.workflow.engine import run_collaborator_chain
from openfl_cli.workflow.experiment import (
    ExperimentPackage,
    load_experiment,
    package_experiment,
    unload_experiment,
)
from openfl_cli.workflow.wire import dump_state, load_state

USER = "alice"
ENVOYS = ("env_one", "env_two")
FLOW_CLASS = "TinyFlow"

# The shape of the e2e tests' SlowFlow: start -> work (at each envoy) -> join -> end.
FLOW = '''\
"""{marker}"""
from openfl_cli.workflow import FLSpec, aggregator, collaborator


class Scale:
    def __init__(self, factor):
        self.factor = factor


class TinyFlow(FLSpec):
    @aggregator
    def start(self):
        self.collaborators = self.runtime.collaborators
        self.scale = Scale(self.factor)
        print("starting on", self.collaborators)
        self.next(self.work, foreach="collaborators")

    @collaborator
    def work(self):
        if self.input in self.fail_on:
            raise RuntimeError(f"{{self.input}} cannot work")
        self.done = self.input
        self.total = float(self.weights.sum()) * self.scale.factor
        self.next(self.join)

    @aggregator
    def join(self, inputs):
        self.names = sorted(i.done for i in inputs)
        self.totals = [i.total for i in inputs]
        self.next(self.end)

    @aggregator
    def end(self):
        print("ended with", self.names)
'''

_modules = itertools.count()
_chains = threading.Lock()  # a chain swaps sys.stdout while it runs: one at a time in this process


def _refused(code: RefusalCode) -> Any:
    return pytest.raises(Refused, match=f"^{code.value}: ")


class Harness:
    """A Director on a tmp config, the experiment's package, and the envoys' side of the protocol."""

    def __init__(self, root: Path, marker: str, period: float, review_timeout: float) -> None:
        source = root / "flow.py"
        source.write_text(FLOW.format(marker=marker))
        self.package: ExperimentPackage = package_experiment(source, FLOW_CLASS)
        config = root / "director_config.yaml"
        config.write_text(
            "settings:\n"
            "  listen_host: 127.0.0.1\n"
            "  listen_port: 0\n"
            f"  envoy_health_check_period: {period}\n"
            f"  review_timeout: {review_timeout}\n"
            "aggregator:\n"
        )
        self.root = root
        self.director = Director(load_director_config(config), root / "director")
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._module: ModuleType | None = None
        self._module_lock = threading.Lock()
        self.ended: dict[str, list[str]] = {}  # envoy -> the experiments it was told ended

    # -- the experimenter's side ---------------------------------------------------------------------

    def submission(
        self,
        collaborators: Sequence[str] = ENVOYS,
        *,
        archive: bytes | None = None,
        flow_class: str = FLOW_CLASS,
        fail_on: Sequence[str] = (),
    ) -> ReceivedState:
        state = {"factor": 2, "fail_on": list(fail_on), "weights": np.arange(4.0)}
        payload, arrays = dump_state(state)
        header = dpb.SubmissionHeader(
            name=FLOW_CLASS,
            collaborators=list(collaborators),
            flow_class=flow_class,
            archive=self.package.archive if archive is None else archive,
        )
        return ReceivedState(dpb.StateHeader(submission=header), payload, arrays, 0)

    def submit(self, collaborators: Sequence[str] = ENVOYS, **kwargs: Any) -> str:
        submitted = self.director.submit(USER, self.submission(collaborators, **kwargs))
        assert submitted.hash == self.package.hash
        assert submitted.experiment.startswith(f"{FLOW_CLASS}-")
        return submitted.experiment

    def events(self, experiment: str, timeout: float = 10.0) -> list[dpb.ExperimentEvent]:
        """Every event of `experiment` until it finished (failing the test after `timeout`)."""
        collected: list[dpb.ExperimentEvent] = []
        done = threading.Event()

        def follow() -> None:
            collected.extend(self.director.watch(USER, experiment))
            done.set()

        threading.Thread(target=follow, daemon=True).start()
        assert done.wait(timeout), f"{experiment} did not finish within {timeout} s: {collected}"
        return collected

    def finished(self, experiment: str, timeout: float = 10.0) -> dpb.Finished:
        last = self.events(experiment, timeout)[-1]
        assert last.HasField("finished")
        return last.finished

    # -- the envoys' side ----------------------------------------------------------------------------

    def report(self, *names: str) -> None:
        for name in names:
            assert self.director.health(name, dpb.HealthReport()) == self.director.registry.period

    def work(self, name: str, kind: str, wait: float = 5.0) -> dpb.WorkItem:
        item = self.director.wait_work(name, wait)
        assert item.WhichOneof("kind") == kind, f"{name} expected {kind}, got {item}"
        return item

    def decide(self, name: str, review: dpb.Review, accepted: bool = True, reason: str = "") -> None:
        decision = dpb.Decision(experiment=review.experiment, hash=review.hash, accepted=accepted)
        decision.reason = reason
        self.director.decide(name, decision)

    def module(self) -> ModuleType:
        """The experiment's code as an envoy imports it: under a module name of its own."""
        with self._module_lock:
            if self._module is None:
                name = f"envoy_side_{self.package.hash[:12]}_{next(_modules)}"
                self._module = load_experiment(self.package, self.root / "envoy", name)
            return self._module

    def compute(self, name: str, task: dpb.ChainTask) -> ReceivedState:
        """What an envoy does with a chain task: fetch its state, run the chain, encode the result."""
        header, payload, arrays = self.director.chain_state(name, task.experiment, task.task)
        assert header.task == task
        module = self.module()
        result = dpb.ChainResultHeader(experiment=task.experiment, task=task.task, ok=True)
        state: dict[str, Any] = {}
        try:
            start = load_state(payload, arrays, module)
            with _chains:
                chain = run_collaborator_chain(
                    getattr(module, FLOW_CLASS), task.step, start, name, {}, live=False
                )
            state = chain.state
            result.transition.CopyFrom(remote_types.transition_to_proto(chain.transition))
            result.outputs.extend(remote_types.output_to_proto(output) for output in chain.outputs)
        except Exception as error:
            result.ok = False
            result.error = f"{type(error).__name__}: {error}"
        payload, arrays = dump_state({"state": state, "snapshots": []}, [module.__name__])
        return ReceivedState(dpb.StateHeader(result=result), payload, arrays, 0)

    def deliver(self, name: str, task: dpb.ChainTask) -> None:
        self.director.chain_result(name, self.compute(name, task))

    def serve(self, name: str, *, accepted: bool = True, reason: str = "", hold: bool = False) -> None:
        """Play envoy `name` in a thread until the test ends: report, review, run (or, with `hold`,
        keep) each chain; note each experiment that ended."""

        def loop() -> None:
            while not self._stop.is_set():
                self.report(name)
                item = self.director.wait_work(name, 0.05)
                kind = item.WhichOneof("kind")
                if kind == "review":
                    self.decide(name, item.review, accepted, reason)
                elif kind == "chain" and not hold:
                    self.deliver(name, item.chain)
                elif kind == "ended":
                    self.ended.setdefault(name, []).append(item.ended)

        thread = threading.Thread(target=loop, name=f"test-{name}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def keep_alive(self, name: str) -> None:
        """Report for `name` in a thread until the test ends, and nothing else."""

        def loop() -> None:
            while not self._stop.wait(0.05):
                self.report(name)

        thread = threading.Thread(target=loop, name=f"test-{name}-health", daemon=True)
        self._threads.append(thread)
        thread.start()

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        records = list(self.director._experiments.values())
        for record in records:  # what a failed test left waiting ends now, as if its envoys went away
            for envoy in record.collaborators:
                record.envoy_lost(envoy, 0.0)
        deadline = time.monotonic() + 5
        while any(r.finished is None for r in records) and time.monotonic() < deadline:
            time.sleep(0.01)
        self.director.close()
        if self._module is not None:
            unload_experiment(self._module.__name__)


@pytest.fixture
def make_harness(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    made: list[Harness] = []

    def make(period: float = 2.0, review_timeout: float = 30.0) -> Harness:
        folder = tmp_path / f"h{len(made)}"
        folder.mkdir()
        # a package of its own per test: the director imports it under a name from its hash
        harness = Harness(folder, f"{request.node.nodeid} {len(made)}", period, review_timeout)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        harness.close()


def _statuses(events: list[dpb.ExperimentEvent]) -> list[str]:
    """The status lines, without the empty ones that only keep the stream alive."""
    return [e.status for e in events if e.WhichOneof("kind") == "status" and e.status]


def _outputs(events: list[dpb.ExperimentEvent]) -> list[str]:
    return [e.output.text for e in events if e.WhichOneof("kind") == "output"]


# -- a whole experiment ----------------------------------------------------------------------------------


def test_an_experiment_runs_at_its_envoys_and_ends_with_the_flows_final_state(make_harness) -> None:
    harness = make_harness()
    harness.report(*ENVOYS)
    for name in ENVOYS:
        harness.serve(name)
    experiment = harness.submit()
    events = harness.events(experiment)
    assert events[-1].finished == dpb.Finished(ok=True)
    assert [e.HasField("finished") for e in events].count(True) == 1
    package = harness.package
    statuses = _statuses(events)
    assert statuses[:2] == [
        f"experiment {experiment} (hash {package.hash}) queued by {USER}",
        "waiting for env_one, env_two to accept it",
    ]
    # the decisions come before the run, which then says how long it took to start and what the
    # envoys' rounds cost outside their steps
    assert sorted(statuses[2:4]) == ["envoy env_one accepted", "envoy env_two accepted"]
    assert statuses[4] == "running on env_one, env_two"
    assert statuses[5].startswith("started in ") and "review, the code loaded" in statuses[5]
    assert (
        statuses[6].startswith("1 round at the envoys, ")
        and "outside the collaborators' steps" in statuses[6]
    )
    assert len(statuses) == 7
    assert "[aggregator/start] starting on ['env_one', 'env_two']" in _outputs(events)
    assert "[aggregator/end] ended with ['env_one', 'env_two']" in _outputs(events)

    header, payload, arrays = harness.director.result(USER, experiment)
    assert header.final.experiment == experiment
    user_side = load_experiment(package, harness.root / "user", f"user_side_{package.hash[:12]}")
    try:
        final = load_state(payload, arrays, user_side)
    finally:
        unload_experiment(user_side.__name__)
    assert final["names"] == ["env_one", "env_two"]
    assert final["totals"] == [12.0, 12.0]
    assert final["collaborators"] == ["env_one", "env_two"]
    assert isinstance(final["scale"], user_side.Scale) and final["scale"].factor == 2
    np.testing.assert_array_equal(final["weights"], np.arange(4.0))
    assert not any(name.startswith("_fx_") for name in final)

    deadline = time.monotonic() + 5
    while len(harness.ended) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert harness.ended == {"env_one": [experiment], "env_two": [experiment]}


def test_the_director_lists_its_envoys(make_harness) -> None:
    harness = make_harness()
    harness.report("env_two", "env_one")
    listing = harness.director.list_envoys(USER)
    assert listing.period_seconds == 2.0
    assert [(e.name, e.online) for e in listing.envoys] == [("env_one", True), ("env_two", True)]


def test_experiments_run_one_after_another(make_harness) -> None:
    harness = make_harness()
    harness.report("env_one")
    first = harness.submit(["env_one"])
    second = harness.submit(["env_one"])
    review = harness.work("env_one", "review").review
    assert review.experiment == first
    assert harness.director.wait_work("env_one", 0.1) == dpb.WorkItem()  # the second waits its turn
    harness.decide("env_one", review, accepted=False, reason="later")
    assert harness.work("env_one", "ended").ended == first
    assert harness.work("env_one", "review").review.experiment == second


def test_only_the_last_results_are_kept(make_harness) -> None:
    harness = make_harness()
    harness.report("env_one")
    harness.serve("env_one")
    experiments = []
    for _ in range(KEPT_RESULTS + 1):
        experiments.append(harness.submit(["env_one"]))
        assert harness.finished(experiments[-1]).ok
    deadline = time.monotonic() + 5  # dropped by the runner just after the last one finished
    while True:
        try:
            harness.director.result(USER, experiments[0])
        except Refused as refused:
            assert refused.code is RefusalCode.LATE
            break
        assert time.monotonic() < deadline, "the oldest result was never dropped"
        time.sleep(0.01)
    for experiment in experiments[1:]:
        assert harness.director.result(USER, experiment)[0].final.experiment == experiment


# -- what an envoy and a user may touch ------------------------------------------------------------------


def test_each_envoy_touches_only_its_own_decisions_and_tasks(make_harness) -> None:
    harness = make_harness()
    director = harness.director
    harness.report(*ENVOYS, "env_three")
    experiment = harness.submit()

    with _refused(RefusalCode.LATE):
        director.result(USER, experiment)
    with _refused(RefusalCode.NOT_AUTHORIZED):
        director.watch("mallory", experiment)
    with _refused(RefusalCode.NOT_AUTHORIZED):
        director.result("mallory", experiment)
    with _refused(RefusalCode.UNKNOWN_TASK):
        director.watch(USER, "TinyFlow-00000000")

    review = harness.work("env_one", "review").review
    assert (review.experiment, review.hash, review.submitted_by) == (experiment, harness.package.hash, USER)
    assert review.archive == harness.package.archive and review.name == FLOW_CLASS
    with _refused(RefusalCode.INVALID):
        director.decide("env_one", dpb.Decision(experiment=experiment, hash="0" * 64, accepted=True))
    with _refused(RefusalCode.UNKNOWN_TASK):
        harness.decide("env_three", review)  # not one of its envoys
    harness.decide("env_one", review)
    with _refused(RefusalCode.DUPLICATE):
        harness.decide("env_one", review, accepted=False)
    harness.decide("env_two", harness.work("env_two", "review").review)

    one = harness.work("env_one", "chain").chain
    two = harness.work("env_two", "chain").chain
    assert (one.experiment, one.step, list(one.collaborators)) == (experiment, "work", list(ENVOYS))
    assert one.hash == harness.package.hash and one.task != two.task
    with _refused(RefusalCode.UNKNOWN_TASK):
        director.chain_state("env_two", experiment, one.task)
    with _refused(RefusalCode.UNKNOWN_TASK):
        director.chain_state("env_three", experiment, one.task)
    with _refused(RefusalCode.UNKNOWN_TASK):
        director.chain_state("env_one", experiment, "work-999")

    result = harness.compute("env_one", one)
    with _refused(RefusalCode.UNKNOWN_TASK):
        director.chain_result("env_two", result)  # env_one's task
    with _refused(RefusalCode.UNKNOWN_TASK):
        director.chain_result("env_three", result)
    with _refused(RefusalCode.INVALID):
        director.chain_result("env_one", ReceivedState(dpb.StateHeader(task=one), b"", {}, 0))
    director.chain_result("env_one", result)
    with _refused(RefusalCode.DUPLICATE):
        director.chain_result("env_one", result)

    director.output("env_two", dpb.OutputBatch(experiment=experiment, lines=[dpb.OutputLine(text="hi")]))
    with _refused(RefusalCode.UNKNOWN_TASK):
        director.output("env_three", dpb.OutputBatch(experiment=experiment))
    harness.deliver("env_two", two)

    events = harness.events(experiment)
    assert events[-1].finished.ok, events[-1]
    [line] = [e.output for e in events if e.output.participant == "env_two"]
    assert line.text == "hi"
    assert director.result(USER, experiment)[0].final.experiment == experiment
    with _refused(RefusalCode.NOT_AUTHORIZED):
        director.result("mallory", experiment)
    with _refused(RefusalCode.UNKNOWN_TASK):  # the experiment's tasks are gone with it
        director.chain_result("env_one", result)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"collaborators": ["env_one", "env_one"]}, "non-empty list of distinct envoy names"),
        ({"collaborators": []}, "non-empty list of distinct envoy names"),
        ({"collaborators": ["../env_one"]}, "invalid collaborator name"),
        ({"archive": b"not a zip"}, "not a readable zip archive"),
        ({"flow_class": "OtherFlow"}, "the package's flow is TinyFlow, not OtherFlow"),
    ],
)
def test_an_invalid_submission_is_refused(make_harness, change: dict[str, Any], reason: str) -> None:
    harness = make_harness()
    collaborators = change.pop("collaborators", ENVOYS)
    with pytest.raises(Refused, match=reason) as excinfo:
        harness.director.submit(USER, harness.submission(collaborators, **change))
    assert excinfo.value.code is RefusalCode.INVALID
    assert harness.director._experiments == {}


def test_a_submission_needs_a_submission_header(make_harness) -> None:
    harness = make_harness()
    with _refused(RefusalCode.INVALID):
        harness.director.submit(USER, ReceivedState(dpb.StateHeader(final=dpb.ResultHeader()), b"", {}, 0))


# -- how an experiment fails -----------------------------------------------------------------------------


def test_a_rejection_fails_the_experiment_naming_the_envoy_and_its_reason(make_harness) -> None:
    harness = make_harness()
    harness.report(*ENVOYS)
    harness.serve("env_one")
    harness.serve("env_two", accepted=False, reason="not on my data")
    experiment = harness.submit()
    finished = harness.finished(experiment)
    assert not finished.ok
    assert finished.error == f"envoy env_two rejected experiment {harness.package.hash[:12]}: not on my data"
    with _refused(RefusalCode.LATE):
        harness.director.result(USER, experiment)


def test_a_rejection_without_a_reason_says_so(make_harness) -> None:
    harness = make_harness()
    harness.report("env_one")
    harness.serve("env_one", accepted=False)
    experiment = harness.submit(["env_one"])
    assert harness.finished(experiment).error.endswith(": no reason given")


def test_an_envoy_not_online_at_submission_fails_the_experiment_naming_it(make_harness) -> None:
    harness = make_harness()
    harness.report("env_one")
    experiment = harness.submit(["env_one", "ghost"])
    finished = harness.finished(experiment)
    assert not finished.ok
    assert finished.error == "envoy ghost not online (online: env_one)"


def test_no_decision_within_the_review_timeout_fails_the_experiment(make_harness) -> None:
    harness = make_harness(review_timeout=0.3)
    harness.report("env_one")
    experiment = harness.submit(["env_one"])
    began = time.monotonic()
    finished = harness.finished(experiment)
    assert time.monotonic() - began < 3.0
    assert "no answer within" in finished.error and "while the envoys reviewed it" in finished.error


def test_an_envoy_going_offline_during_its_task_fails_the_experiment(make_harness) -> None:
    harness = make_harness(period=0.2)  # offline after 1.4 s without a report
    harness.report("env_one")
    experiment = harness.submit(["env_one"])
    harness.decide("env_one", harness.work("env_one", "review").review)
    task = harness.work("env_one", "chain").chain
    silent_since = time.monotonic()  # from here on env_one says nothing
    finished = harness.finished(experiment)
    elapsed = time.monotonic() - silent_since
    assert harness.director.registry.offline_after <= elapsed < harness.director.registry.offline_after + 2
    assert not finished.ok
    assert finished.error.startswith("envoy env_one went offline (no health report for ")
    assert finished.error.endswith(" s) during step work")
    with _refused(RefusalCode.UNKNOWN_TASK):  # back too late: the task is gone with the experiment
        harness.deliver("env_one", task)


def test_a_failed_collaborator_step_fails_the_experiment_with_its_error(make_harness) -> None:
    harness = make_harness()
    harness.report(*ENVOYS)
    for name in ENVOYS:
        harness.serve(name)
    experiment = harness.submit(fail_on=["env_two"])
    finished = harness.finished(experiment)
    assert not finished.ok
    assert finished.error == "collaborator env_two failed in step work: RuntimeError: env_two cannot work"


def test_a_failed_step_ends_the_experiment_without_waiting_for_the_others(make_harness) -> None:
    harness = make_harness()
    harness.report(*ENVOYS)
    harness.serve("env_one", hold=True)  # its step runs on and on
    harness.serve("env_two")
    experiment = harness.submit(fail_on=["env_two"])
    assert "cannot work" in harness.finished(experiment, timeout=1.5).error


def test_the_offline_message_names_the_step_of_the_envoy_that_went_offline(make_harness) -> None:
    harness = make_harness(period=0.2)
    harness.report(*ENVOYS)
    harness.serve("env_one", hold=True)  # keeps reporting, its task still running
    experiment = harness.submit()
    harness.decide("env_two", harness.work("env_two", "review").review)
    harness.work("env_two", "chain")  # then env_two falls silent
    error = harness.finished(experiment).error
    assert error.startswith("envoy env_two went offline")
    assert error.endswith("during step work"), error


def test_an_envoy_back_online_before_a_queued_experiment_starts_does_not_fail_it(make_harness) -> None:
    harness = make_harness(period=0.2)
    went_offline = threading.Event()
    harness.director.registry.on_offline(lambda name, silent: name == "env_two" and went_offline.set())
    harness.report(*ENVOYS)
    harness.keep_alive("env_one")
    first = harness.submit(["env_one"])
    review = harness.work("env_one", "review").review  # the first experiment is in review meanwhile
    second = harness.submit(["env_two"])
    assert went_offline.wait(5), "env_two never went offline"
    harness.serve("env_two")  # back online before the second experiment starts
    harness.decide("env_one", review, accepted=False, reason="busy")
    assert harness.finished(first).error.endswith("busy")
    finished = harness.finished(second)
    assert finished.ok, finished.error
