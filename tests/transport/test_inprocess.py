"""What only the in-process link promises: many threads at once, no grpc, copies of its own."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from openfl_cli.errors import FxError
from openfl_cli.federation.aggregation import WeightedAverage
from openfl_cli.federation.aggregator import Aggregator, BestMetricRule, RoundOutputs
from openfl_cli.federation.assigner import RandomGroupedAssigner
from openfl_cli.federation.straggler import WaitForAllPolicy
from openfl_cli.transport.inprocess import InProcessLink
from openfl_cli.transport.messages import Action, AggregatorRefused, RefusalCode, Refused, TaskSpec
from tests.transport.conftest import small_model
from tests.transport.fakes import PLAN_HASH, FakeService, FakeSink

TRAIN = {"train": TaskSpec("train", "train_task", {"epochs": 1})}


def _aggregator(tmp_path: Path, names: list[str]) -> Aggregator:
    return Aggregator(
        plan_hash=PLAN_HASH,
        collaborators=names,
        tasks=TRAIN,
        assigner=RandomGroupedAssigner([{"name": "all", "percentage": 1.0, "tasks": ["train"]}], names),
        straggler=WaitForAllPolicy(),
        functions={"train": WeightedAverage()},
        model={"w": np.zeros((16, 4), np.float32)},
        rounds_to_train=1,
        outputs=RoundOutputs(
            last_path=tmp_path / "last.pbuf", best_path=tmp_path / "best.pbuf", rule=BestMetricRule()
        ),
        quit_grace=0.2,
    )


def test_hundreds_of_collaborators_in_threads(tmp_path: Path) -> None:
    names = [f"col{i:03d}" for i in range(300)]
    aggregator = _aggregator(tmp_path, names)
    closer = threading.Thread(target=aggregator.run)
    closer.start()
    errors: list[BaseException] = []
    quits: list[str] = []

    def work(index: int, name: str) -> None:
        try:
            with InProcessLink(aggregator, name, plan_hash=PLAN_HASH, allowed=names) as link:
                assignment = link.get_tasks(10)
                assert assignment.action is Action.RUN
                model = link.get_model(assignment.round_number)
                model["w"][:] = index
                link.send_result(assignment.round_number, "train", {"loss": 1.0}, index + 1, model)
                if link.get_tasks(10).action is Action.QUIT:
                    quits.append(name)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i, name)) for i, name in enumerate(names)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    closer.join(10)
    assert not errors, errors[:3]
    assert sorted(quits) == names and aggregator.finished
    weights = np.arange(1, 301, dtype=np.float64)
    expected = float(np.sum(weights * np.arange(300)) / np.sum(weights))
    np.testing.assert_allclose(aggregator.model["w"], np.full((16, 4), expected), rtol=1e-6)


def test_models_come_in_the_wire_layout() -> None:
    big_endian = np.arange(12, dtype=">f8").reshape(3, 4)
    service = FakeService({"be": big_endian, "f": np.asfortranarray(np.ones((3, 2), np.float32))})
    model = InProcessLink(service, "one").get_model(0)
    assert model["be"].dtype == np.dtype("<f8") and model["f"].flags.c_contiguous
    np.testing.assert_array_equal(model["be"], big_endian)


class BreakingService(FakeService):
    """Its sinks fail on the tensor named `fail_on`, with `error`."""

    fail_on = "steps"
    error: Exception = RuntimeError("disk full")

    def open_result(self, *args: Any) -> FakeSink:
        sink = super().open_result(*args)
        add = sink.add

        def failing_add(name: str, array: np.ndarray) -> None:
            if name == self.fail_on:
                raise self.error
            add(name, array)

        sink.add = failing_add  # type: ignore[method-assign]
        return sink


def test_a_result_reaches_the_sink_whole() -> None:
    service = FakeService(small_model())
    link = InProcessLink(service, "one")
    model = link.get_model(0)
    report = link.send_result(0, "train", {"loss": 1}, 3, model)
    assert report.raw_bytes == report.sent_bytes == sum(array.nbytes for array in model.values())
    (result,) = service.results
    assert result.metrics == {"loss": 1.0} and isinstance(result.metrics["loss"], float)
    for name, array in model.items():
        np.testing.assert_array_equal(result.tensors[name], array)
    assert not service.aborted


def test_a_result_that_fails_midway_is_aborted() -> None:
    service = BreakingService(small_model())
    link = InProcessLink(service, "one")
    with pytest.raises(RuntimeError, match="disk full"):  # a bug of the service stays itself
        link.send_result(0, "train", {}, 1, link.get_model(0))
    service.error = Refused(RefusalCode.INVALID, "steps went backwards")
    with pytest.raises(AggregatorRefused, match="invalid: steps went backwards"):
        link.send_result(0, "train", {}, 1, link.get_model(0))
    assert service.aborted == ["stream broke (RuntimeError)", "invalid: steps went backwards"]
    assert service.results == []


def test_a_closed_link_refuses_to_call() -> None:
    link = InProcessLink(FakeService(small_model()), "one")
    link.close()
    with pytest.raises(FxError, match="the in-process link of 'one' is closed"):
        link.ping()


def test_importing_it_leaves_grpc_out() -> None:
    code = "import sys, openfl_cli.transport.inprocess; print('grpc' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
