"""Two links, one contract: every test runs over gRPC (real mutual TLS on 127.0.0.1) and in process,
against the real aggregator, and must see the same answers and the same refusals."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from openfl_cli.errors import FxError
from openfl_cli.federation.aggregation import WeightedAverage
from openfl_cli.federation.aggregator import Aggregator, BestMetricRule, RoundOutputs
from openfl_cli.federation.aggregator.core import ExperimentStopped
from openfl_cli.federation.assigner import RandomGroupedAssigner
from openfl_cli.federation.straggler import WaitForAllPolicy
from openfl_cli.tensors.pipelines import CompressionPipeline, QuantizationPipeline, decode_tensor
from openfl_cli.transport.client import AggregatorClient
from openfl_cli.transport.inprocess import InProcessLink
from openfl_cli.transport.link import OpenLink
from openfl_cli.transport.messages import Action, AggregatorRefused, RefusalCode, TaskFailure, TaskSpec
from openfl_cli.transport.server import AggregatorServer
from tests.transport.conftest import Authorizer, Pki

PLAN = "e" * 96
ROSTER = ("one", "two")
TASKS = {
    "aggregated_model_validation": TaskSpec(
        "aggregated_model_validation", "validate_task", {"apply": "global", "metrics": ["acc"]}
    ),
    "train": TaskSpec("train", "train_task", {"epochs": 1}),
    "locally_tuned_model_validation": TaskSpec(
        "locally_tuned_model_validation", "validate_task", {"apply": "local"}
    ),
}


def initial_model() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    return {
        "dense.weight": rng.standard_normal((32, 24)).astype(np.float32),
        "dense.bias": np.zeros(24, np.float32),
        "steps": np.array([0], np.int64),
    }


@dataclass
class Federation:
    backend: str
    aggregator: Aggregator
    open: Callable[..., OpenLink]
    threads: list[threading.Thread] = field(default_factory=list)
    stopped: ExperimentStopped | None = None

    def run(self) -> None:
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _run(self) -> None:
        try:
            self.aggregator.run()
        except ExperimentStopped as stopped:
            self.stopped = stopped

    def wait_round(self, number: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while self.aggregator.round_number < number:
            assert time.monotonic() < deadline, f"round {number} never opened"
            time.sleep(0.005)


def _aggregator(tmp_path: Path, rounds: int) -> Aggregator:
    outputs = RoundOutputs(
        last_path=tmp_path / "last.pbuf", best_path=tmp_path / "best.pbuf", rule=BestMetricRule()
    )
    return Aggregator(
        plan_hash=PLAN,
        collaborators=ROSTER,
        tasks=TASKS,
        assigner=RandomGroupedAssigner(collaborators=ROSTER),
        straggler=WaitForAllPolicy(),
        functions={name: WeightedAverage() for name in TASKS},
        model=initial_model(),
        rounds_to_train=rounds,
        outputs=outputs,
        quit_grace=0.3,
    )


@pytest.fixture(params=["grpc", "inprocess"])
def make_federation(
    request: pytest.FixtureRequest, pki: Pki, tmp_path: Path
) -> Iterator[Callable[..., Federation]]:
    made: list[tuple[Federation, AggregatorServer | None]] = []
    links: list[OpenLink] = []

    def make(rounds: int = 2) -> Federation:
        aggregator = _aggregator(tmp_path, rounds)
        server: AggregatorServer | None = None
        if request.param == "grpc":
            server = AggregatorServer(
                aggregator,
                "127.0.0.1",
                0,
                pki.server.material(),
                authorizer=Authorizer(set(ROSTER)),
                expected_collaborators=3,
            )
            port = server.start()

            def open_link(
                name: str, plan_hash: str = PLAN, pipeline: CompressionPipeline | None = None
            ) -> OpenLink:
                link = AggregatorClient(
                    "127.0.0.1",
                    port,
                    name,
                    plan_hash,
                    pki.clients[name].material(),
                    reconnect_interval=0.2,
                    reconnect_timeout=1.0,
                    pipeline=pipeline,
                )
                links.append(link)
                return link
        else:

            def open_link(
                name: str, plan_hash: str = PLAN, pipeline: CompressionPipeline | None = None
            ) -> OpenLink:
                link = InProcessLink(aggregator, name, plan_hash=plan_hash, allowed=ROSTER, pipeline=pipeline)
                links.append(link)
                return link

        federation = Federation(request.param, aggregator, open_link)
        made.append((federation, server))
        return federation

    yield make
    for link in links:
        link.close()
    for federation, server in made:
        federation.aggregator.stop()
        for thread in federation.threads:
            thread.join(5)
            assert not thread.is_alive(), "the aggregator did not stop"
        if server is not None:
            server.stop(grace=0.2)


def trained(model: Mapping[str, np.ndarray], value: float, step: int) -> dict[str, np.ndarray]:
    return {
        "dense.weight": np.full_like(model["dense.weight"], value),
        "dense.bias": np.full_like(model["dense.bias"], -value),
        "steps": np.array([step], np.int64),
    }


def work_round(link: OpenLink, round_number: int, value: float, count: int) -> None:
    """One collaborator's whole round: model down, the three results up."""
    model = link.get_model(round_number)
    link.send_result(round_number, "aggregated_model_validation", {"acc": 0.5}, count, {})
    link.send_result(round_number, "train", {"loss": value}, count, trained(model, value, round_number + 1))
    link.send_result(round_number, "locally_tuned_model_validation", {"acc": 0.5}, count, {})


def refused(call: Callable[[], object], code: RefusalCode, *fragments: str) -> AggregatorRefused:
    started = time.monotonic()
    with pytest.raises(AggregatorRefused) as caught:
        call()
    assert caught.value.code is code, caught.value
    assert isinstance(caught.value, FxError)  # printed as one line by the CLI
    for fragment in fragments:
        assert fragment in caught.value.reason, caught.value.reason
    assert time.monotonic() - started < 0.5, "refusals are never retried"
    return caught.value


# -- answers ---------------------------------------------------------------------------------------------


def test_ping(make_federation: Callable[..., Federation]) -> None:
    reply = make_federation().open("one").ping()
    assert (reply.aggregator, reply.plan_hash, reply.round_number, reply.rounds_to_train) == (
        "aggregator",
        PLAN,
        0,
        2,
    )


def test_tasks_of_the_open_round_are_the_collaborators_own(
    make_federation: Callable[..., Federation],
) -> None:
    link = make_federation().open("one")
    first = link.get_tasks(5)
    assert first.action is Action.RUN and first.round_number == 0
    assert [(t.name, t.function, t.kwargs) for t in first.tasks] == [
        (t.name, t.function, t.kwargs) for t in TASKS.values()
    ]
    first.tasks[0].kwargs["metrics"].append("tampered")  # the aggregator's tasks are not shared
    again = link.get_tasks(5)
    assert again.tasks[0].kwargs == {"apply": "global", "metrics": ["acc"]}


def test_long_poll_is_answered_when_the_round_opens(make_federation: Callable[..., Federation]) -> None:
    federation = make_federation()
    federation.run()
    one, two = federation.open("one"), federation.open("two")
    work_round(one, 0, 1.0, 10)
    began = time.monotonic()
    assert one.get_tasks(0.2).action is Action.WAIT  # done with round 0: nothing until round 1
    assert 0.15 < time.monotonic() - began < 2.0
    answers: list[tuple[float, object]] = []

    def poll() -> None:
        began = time.monotonic()
        answers.append((0.0, None))
        answer = one.get_tasks(20.0)
        answers[0] = (time.monotonic() - began, answer)

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.3)
    assert answers == [(0.0, None)], "a collaborator done with the round must wait"
    opened = time.monotonic()
    work_round(two, 0, 1.0, 10)
    poller.join(5)
    waited, answer = answers[0]
    assert answer.action is Action.RUN and answer.round_number == 1  # type: ignore[attr-defined]
    assert time.monotonic() - opened < 2.0 and waited > 0.3


def test_model_download_is_equal_and_not_aliased(make_federation: Callable[..., Federation]) -> None:
    federation = make_federation()
    link = federation.open("one")
    model = link.get_model(0)
    reference = federation.aggregator.model
    assert list(model) == list(reference)
    for name, array in reference.items():
        assert model[name].dtype == array.dtype and model[name].shape == array.shape, name
        np.testing.assert_array_equal(model[name], array)
        assert model[name].flags.writeable and not np.shares_memory(model[name], array), name
    before = reference["dense.weight"].copy()
    model["dense.weight"] += 100.0
    np.testing.assert_array_equal(federation.aggregator.model["dense.weight"], before)
    np.testing.assert_array_equal(link.get_model(0)["dense.weight"], before)


def test_a_result_is_received_once(make_federation: Callable[..., Federation]) -> None:
    link = make_federation().open("one")
    model = link.get_model(0)
    tensors = trained(model, 2.0, 1)
    report = link.send_result(0, "train", {"loss": 0.5}, 7, tensors)
    assert report.raw_bytes == sum(array.nbytes for array in tensors.values())
    refused(
        lambda: link.send_result(0, "train", {"loss": 0.5}, 7, tensors),
        RefusalCode.DUPLICATE,
        "the result of 'train' for round 0 was already received",
    )


def test_results_are_folded_weighted_by_samples(make_federation: Callable[..., Federation]) -> None:
    federation = make_federation()
    federation.run()
    work_round(federation.open("one"), 0, 1.0, 30)
    work_round(federation.open("two"), 0, 5.0, 10)
    federation.wait_round(1)
    model = federation.aggregator.model
    np.testing.assert_allclose(model["dense.weight"], np.full((32, 24), 2.0))  # (1 * 30 + 5 * 10) / 40
    np.testing.assert_allclose(model["dense.bias"], np.full(24, -2.0))
    assert model["dense.weight"].dtype == np.float32 and model["steps"].tolist() == [1]


def test_lossy_uploads_are_what_they_decode_to(make_federation: Callable[..., Federation]) -> None:
    """A lossy pipeline changes the results the same way on both links."""
    pipeline = QuantizationPipeline(n_bits=4)
    federation = make_federation()
    federation.run()
    rng = np.random.default_rng(9)
    uploads = {name: rng.standard_normal((32, 24)).astype(np.float32) for name in ROSTER}
    for name in ROSTER:
        link = federation.open(name, pipeline=pipeline)
        model = link.get_model(0)
        link.send_result(0, "aggregated_model_validation", {"acc": 0.5}, 10, {})
        report = link.send_result(
            0, "train", {}, 10, {**trained(model, 0.0, 1), "dense.weight": uploads[name]}
        )
        assert report.sent_bytes < report.raw_bytes
        link.send_result(0, "locally_tuned_model_validation", {"acc": 0.5}, 10, {})
    federation.wait_round(1)
    decoded = [decode_tensor(pipeline.encode(uploads[name])) for name in ROSTER]
    expected = ((decoded[0].astype(np.float64) + decoded[1]) / 2).astype(np.float32)
    np.testing.assert_allclose(federation.aggregator.model["dense.weight"], expected, rtol=0, atol=1e-6)
    assert not np.allclose(expected, (uploads["one"] + uploads["two"]) / 2, atol=1e-3)


# -- refusals --------------------------------------------------------------------------------------------


def test_late_calls_are_refused(make_federation: Callable[..., Federation]) -> None:
    link = make_federation().open("one")
    refused(lambda: link.get_model(5), RefusalCode.LATE, "round 5 is closed")
    model = link.get_model(0)
    refused(
        lambda: link.send_result(1, "train", {}, 1, trained(model, 1.0, 1)),
        RefusalCode.LATE,
        "round 1 is closed (the aggregator is at round 0)",
    )


def test_unknown_task_is_refused(make_federation: Callable[..., Federation]) -> None:
    link = make_federation().open("one")
    refused(
        lambda: link.send_result(0, "nope", {}, 1, {}),
        RefusalCode.UNKNOWN_TASK,
        "task 'nope' is not assigned to one in round 0",
    )


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"extra": np.zeros(2, np.float32)}, "unknown tensor 'extra': not in the model of this round"),
        (
            {"dense.bias": np.zeros(25, np.float32)},
            "tensor 'dense.bias' is float32 [25], the model has float32 [24]",
        ),
        (
            {"dense.bias": np.zeros(24, np.float64)},
            "tensor 'dense.bias' is float64 [24], the model has float32 [24]",
        ),
    ],
)
def test_tensors_unlike_the_model_are_refused_before_the_result_opens(
    make_federation: Callable[..., Federation], change: dict[str, np.ndarray], fragment: str
) -> None:
    link = make_federation().open("one")
    model = link.get_model(0)
    good = trained(model, 1.0, 1)
    refused(lambda: link.send_result(0, "train", {}, 5, {**good, **change}), RefusalCode.INVALID, fragment)
    link.send_result(0, "train", {}, 5, good)  # nothing was opened: the right result is still welcome


def test_non_finite_tensor_refuses_the_result_for_good(make_federation: Callable[..., Federation]) -> None:
    link = make_federation().open("one")
    tensors = trained(link.get_model(0), 1.0, 1)
    tensors["dense.weight"][3, 2] = np.nan
    refused(
        lambda: link.send_result(0, "train", {}, 5, tensors),
        RefusalCode.INVALID,
        "tensor 'dense.weight' holds NaN or infinite values",
    )
    tensors["dense.weight"][3, 2] = 0.0
    refused(lambda: link.send_result(0, "train", {}, 5, tensors), RefusalCode.DUPLICATE, "already received")


@pytest.mark.parametrize(
    ("metrics", "count", "fragment"),
    [
        ({"loss": float("nan")}, 5, "metric 'loss' must be a finite number"),
        ({"loss": 1.0}, -5, "sample count must be an integer >= 0, got -5"),
        ({"": 1.0}, 5, "metric names must have 1..1024 characters"),
    ],
)
def test_invalid_result_fields_are_refused(
    make_federation: Callable[..., Federation], metrics: dict[str, float], count: int, fragment: str
) -> None:
    link = make_federation().open("one")
    refused(
        lambda: link.send_result(0, "aggregated_model_validation", metrics, count, {}),
        RefusalCode.INVALID,
        fragment,
    )


def test_a_sender_outside_the_roster_is_refused(make_federation: Callable[..., Federation]) -> None:
    federation = make_federation()
    stranger = federation.open("mallory")
    refused(stranger.ping, RefusalCode.NOT_AUTHORIZED, "'mallory' is not in")
    refused(lambda: stranger.get_tasks(5), RefusalCode.NOT_AUTHORIZED, "'mallory'")
    refused(lambda: stranger.get_model(0), RefusalCode.NOT_AUTHORIZED, "'mallory'")
    refused(lambda: stranger.send_result(0, "train", {}, 1, {}), RefusalCode.NOT_AUTHORIZED, "'mallory'")


def test_another_plan_is_refused(make_federation: Callable[..., Federation]) -> None:
    link = make_federation().open("one", plan_hash="f" * 96)
    refused(
        lambda: link.get_tasks(5),
        RefusalCode.PLAN_MISMATCH,
        "collaborator 'one' runs plan ffffffffffff..., the aggregator runs eeeeeeeeeeee...",
    )


# -- a whole experiment ----------------------------------------------------------------------------------


def test_a_small_experiment_end_to_end(make_federation: Callable[..., Federation]) -> None:
    federation = make_federation(rounds=2)
    federation.run()
    counts = {"one": 30, "two": 10}
    values = {"one": 1.0, "two": 5.0}
    worked: dict[str, list[int]] = {name: [] for name in ROSTER}
    errors: list[BaseException] = []

    def collaborator(name: str) -> None:
        try:
            link = federation.open(name)
            assert link.ping().round_number == 0
            while True:
                assignment = link.get_tasks(5.0)
                if assignment.action is Action.QUIT:
                    return
                if assignment.action is Action.RUN:
                    work_round(link, assignment.round_number, values[name], counts[name])
                    worked[name].append(assignment.round_number)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=collaborator, args=(name,)) for name in ROSTER]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert not errors, errors
    assert worked == {"one": [0, 1], "two": [0, 1]}
    for thread in federation.threads:
        thread.join(5)
    assert federation.aggregator.finished
    model = federation.aggregator.model
    np.testing.assert_allclose(model["dense.weight"], np.full((32, 24), 2.0))
    assert model["steps"].tolist() == [2]


# -- failures ----------------------------------------------------------------------------------------------


def test_a_failure_report_reaches_the_aggregator_as_one_line_and_stops_a_wait_for_all_round(
    make_federation: Callable[..., Federation],
) -> None:
    federation = make_federation()
    federation.run()
    one, two = federation.open("one"), federation.open("two")
    work_round(one, 0, 1.0, 10)
    two.report_failure(TaskFailure(0, "train", "Traceback:\n  line 3\nRuntimeError: out of memory\x00"))
    told = one.get_tasks(5)
    assert told.action is Action.ABORT
    assert "two" in told.reason and "Traceback: line 3 RuntimeError: out of memory" in told.reason
    assert "\n" not in told.reason and "\x00" not in told.reason


def test_failure_reports_are_refused_like_results(make_federation: Callable[..., Federation]) -> None:
    link = make_federation().open("one")
    refused(lambda: link.report_failure(TaskFailure(4, "train", "x")), RefusalCode.LATE, "round 4")
    refused(lambda: link.report_failure(TaskFailure(0, "nope", "x")), RefusalCode.UNKNOWN_TASK, "'nope'")
    refused(lambda: link.report_failure(TaskFailure(-1, "train", "x")), RefusalCode.INVALID, "negative")
