"""A real collaborator's task loop over a script runner: it trains through the script each round and
closes the runner (ending the script) when its work ends, however it ends."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from openfl_cli.client.runner import ScriptDataLoader, ScriptTaskRunner
from openfl_cli.federation.collaborator import Collaborator
from openfl_cli.transport.messages import Action, PingReply, SendReport, TaskAssignment, TaskSpec
from tests.client.helpers import write_script

TRAIN = TaskSpec("train", "train_task", {"metrics": ["accuracy"]})


class Link:
    def __init__(self, rounds: int, fail_after: int | None = None) -> None:
        self.script = [TaskAssignment(Action.RUN, n, (TRAIN,)) for n in range(rounds)]
        self.fail_after = fail_after
        self.sent: list[tuple[int, dict[str, float], int, dict[str, np.ndarray]]] = []

    def ping(self) -> PingReply:
        return PingReply("agg", "h", 0, len(self.script))

    def get_tasks(self, wait_seconds: float) -> TaskAssignment:
        if self.fail_after is not None and len(self.sent) >= self.fail_after:
            raise ConnectionError("aggregator gone")
        return self.script.pop(0) if self.script else TaskAssignment(Action.QUIT)

    def get_model(self, round_number: int) -> dict[str, np.ndarray]:
        return {"w": np.full(3, float(round_number), np.float32)}

    def send_result(
        self,
        round_number: int,
        task_name: str,
        metrics: Mapping[str, float],
        sample_count: int,
        tensors: Mapping[str, np.ndarray],
    ) -> SendReport:
        self.sent.append((round_number, dict(metrics), sample_count, dict(tensors)))
        return SendReport(0, 0)


def script_runner(tmp_path: Path, external: bool) -> ScriptTaskRunner:
    write_script(tmp_path)
    return ScriptTaskRunner(
        ScriptDataLoader("site-1"),
        script="train.py",
        framework="numpy",
        launch_external_process=external,
        workspace=tmp_path,
    )


@pytest.mark.parametrize("external", [False, True], ids=["in-process", "ex-process"])
def test_the_collaborator_trains_through_the_script_and_closes_it(tmp_path: Path, external: bool) -> None:
    runner = script_runner(tmp_path, external)
    link = Link(rounds=2)
    assert Collaborator("site-1", runner, link).run() == 2
    assert [(r, metrics, count) for r, metrics, count, _ in link.sent] == [
        (0, {"accuracy": 0.0}, 10),
        (1, {"accuracy": 1.0}, 10),
    ]
    np.testing.assert_allclose(link.sent[1][3]["w"], np.full(3, 2.0))  # the round's model + 1
    assert runner._driver is not None and runner._driver._closed and runner._driver._handle is None


def test_the_runner_is_closed_when_the_work_fails(tmp_path: Path) -> None:
    runner = script_runner(tmp_path, external=False)
    collaborator = Collaborator("site-1", runner, Link(rounds=3, fail_after=1))
    with pytest.raises(ConnectionError):
        collaborator.run()
    assert runner._driver is not None and runner._driver._closed
