"""LocalRuntime(backend='ray'): a local instance, an existing one, and a two-node cluster on this machine.

The tests run in file order: the first two need no Ray instance in this process (one starts its own,
one connects to a cluster), the rest share one `ray.init()` instance that the module keeps running.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from openfl_cli.errors import UsageError  # noqa: E402
from openfl_cli.workflow import Aggregator, Collaborator, FLSpec, LocalRuntime  # noqa: E402
from openfl_cli.workflow import aggregator as on_aggregator  # noqa: E402
from openfl_cli.workflow import collaborator as on_collaborator  # noqa: E402

pytestmark = [pytest.mark.ray, pytest.mark.timeout(120)]
NAMES = ["alpha", "beta", "gamma"]
RAY = str(Path(sys.executable).with_name("ray"))


def private_data(index: int) -> dict[str, Any]:
    rng = np.random.default_rng(index)
    # built where the collaborator's steps run (its actor on Ray), never shipped there
    return {"local_data": rng.normal(size=(8, 4)) + index, "secret_index": index, "built_in": os.getpid()}


class AveragingFlow(FLSpec):
    """start -> train -> evaluate -> join (average, 2 rounds) -> end, numpy only."""

    def __init__(self, rounds: int = 2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rounds = rounds

    @on_aggregator
    def start(self) -> None:
        print("starting")
        self.model = np.zeros(4)
        self.round = 0
        self.history: list[list[float]] = []
        self.seen_private: list[bool] = []
        self.where: list[tuple[str, str, int, float, float]] = []
        self.collaborators = self.runtime.collaborators
        self.next(self.train, foreach="collaborators")

    @on_collaborator
    def train(self) -> None:
        assert hasattr(self, "local_data") and hasattr(self, "secret_index")
        assert self.runtime.collaborators == self.collaborators
        assert self.built_in == os.getpid()
        if self.input == getattr(self, "fail_on", None):
            raise ValueError(f"{self.input} cannot train")
        began = time.time()
        time.sleep(self.pause)
        self.model = self.model + self.local_data.mean(axis=0) * (self.secret_index + 1)
        context = ray.get_runtime_context() if ray.is_initialized() else None
        node = context.get_node_id() if context is not None else "driver"
        self.at = (self.input, node, os.getpid(), began, time.time())
        print(f"trained {self.input}")
        print(f"round {self.round}")
        self.next(self.evaluate)

    @on_collaborator
    def evaluate(self) -> None:
        assert hasattr(self, "local_data")
        self.score = float(np.abs(self.model).sum())
        print(f"score {self.score:.3f}", file=sys.stderr)
        self.next(self.join)

    @on_aggregator
    def join(self, inputs: list[Any]) -> None:
        self.seen_private.extend(hasattr(i, "local_data") or hasattr(i, "built_in") for i in inputs)
        self.model = np.mean([i.model for i in inputs], axis=0)
        self.history.append([i.score for i in inputs])
        self.where.extend(i.at for i in inputs)
        self.round += 1
        if self.round < self.rounds:
            self.next(self.train, foreach="collaborators")
        else:
            self.next(self.end)

    @on_aggregator
    def end(self) -> None:
        print("done")
        self.next_was_end = True


def collaborators(names: list[str] = NAMES, **options: Any) -> list[Collaborator]:
    return [
        Collaborator(name=name, private_attributes_callable=private_data, index=i, **options)
        for i, name in enumerate(names)
    ]


def run_flow(
    backend: str,
    names: list[str] = NAMES,
    pause: float = 0.0,
    participant: dict[str, Any] | None = None,
    **options: Any,
) -> tuple[Any, LocalRuntime]:
    runtime = LocalRuntime(
        aggregator=Aggregator(),
        collaborators=collaborators(names, **(participant or {})),
        backend=backend,
        **options,
    )
    flow = AveragingFlow()
    flow.pause = pause
    flow.runtime = runtime
    flow.run()
    return flow, runtime


@pytest.fixture(scope="module")
def reference() -> FLSpec:
    flow, _ = run_flow("single_process")
    return flow


def check_like_reference(flow: Any, reference: Any) -> None:
    np.testing.assert_allclose(flow.model, reference.model)
    assert flow.history == reference.history
    assert flow.round == 2 and flow.next_was_end
    assert flow.seen_private == [False] * (2 * len(NAMES))
    assert not any(hasattr(flow, name) for name in ("local_data", "secret_index", "built_in"))


def test_local_instance_started_and_stopped(reference: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert not ray.is_initialized()
    flow, runtime = run_flow("ray", num_cpus=2)
    assert not ray.is_initialized()  # what it started, it stopped
    check_like_reference(flow, reference)
    # each collaborator in its own worker process
    assert len({at[2] for at in flow.where}) == len(NAMES)
    assert all(at[2] != os.getpid() for at in flow.where)
    out, err = capsys.readouterr()
    lines = [line for line in out.splitlines() if line.startswith("[")]
    one_round = [
        line for name in NAMES for line in (f"[{name}/train] trained {name}", f"[{name}/train] round 0")
    ]
    assert lines[0] == "[aggregator/start] starting"
    assert lines[1 : 1 + len(one_round)] == one_round
    assert lines[-1] == "[aggregator/end] done"
    assert [line.split("]")[0] for line in err.splitlines() if "/evaluate]" in line] == [
        f"[{name}/evaluate" for name in NAMES
    ] * 2
    assert [(o.participant, o.step) for o in runtime.step_outputs][:7] == [
        ("aggregator", "start"),
        *[(name, step) for name in NAMES for step in ("train", "evaluate")],
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def processes_under(marker: str) -> list[int]:
    """The processes `ray start` started for this test: those whose environment holds
    FX_RAY_TEST_CLUSTER=`marker` or that hold a file open under `marker` (our own temp dir). Ray renames
    its processes and they outlive `ray start`, so neither their command line nor their parent tells."""
    wanted = f"FX_RAY_TEST_CLUSTER={marker}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                mine = wanted in f.read().split(b"\0")
            if not mine:
                for fd in os.listdir(f"/proc/{entry}/fd"):
                    with contextlib.suppress(OSError):
                        if os.readlink(f"/proc/{entry}/fd/{fd}").startswith(marker + "/"):
                            mine = True
                            break
        except OSError:
            continue
        if mine:
            found.append(int(entry))
    return found


@pytest.fixture(scope="module")
def two_nodes() -> Iterator[str]:
    temp = tempfile.mkdtemp(prefix="fxray", dir="/tmp")  # short: Ray's socket paths must stay short
    port = free_port()
    address = f"127.0.0.1:{port}"
    common = ["--num-cpus=1", "--node-ip-address=127.0.0.1", f"--temp-dir={temp}", "--disable-usage-stats"]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "FX_RAY_TEST_CLUSTER": temp}
    env.pop("RAY_ADDRESS", None)
    started: set[int] = set()
    try:
        for args in (
            ["--head", f"--port={port}", "--include-dashboard=false", '--resources={"head": 1}'],
            [f"--address={address}", '--resources={"second": 1}'],
        ):
            subprocess.run(
                [RAY, "start", *args, *common], check=True, env=env, capture_output=True, timeout=60
            )
            started.update(processes_under(temp))
        yield address
    finally:
        started.update(processes_under(temp))
        for pid in started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.time() + 3  # Ray's agents may ignore SIGTERM
        while time.time() < deadline and processes_under(temp):
            time.sleep(0.2)
        for pid in processes_under(temp):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.time() + 5
        while time.time() < deadline and processes_under(temp):
            time.sleep(0.1)
        assert not processes_under(temp), "processes of the test cluster still run"
        shutil.rmtree(temp, ignore_errors=True)


def test_two_node_cluster(two_nodes: str, reference: Any) -> None:
    assert not ray.is_initialized()
    names = NAMES[:2]
    flow, _ = run_flow("ray", names=names, participant={"num_cpus": 1}, address=two_nodes)
    assert not ray.is_initialized()  # disconnected; the cluster keeps running
    nodes = {at[1] for at in flow.where}
    assert len(nodes) == 2, flow.where
    assert subprocess.run([RAY, "status", f"--address={two_nodes}"], capture_output=True).returncode == 0
    assert flow.round == 2


@pytest.fixture(scope="module")
def existing() -> Iterator[None]:
    ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, logging_level="WARNING")
    yield
    ray.shutdown()


def test_existing_instance_joined_and_left_running(existing: None, reference: Any) -> None:
    flow, _ = run_flow("ray", pause=1.0)
    assert ray.is_initialized()
    check_like_reference(flow, reference)
    # the chains of one foreach ran at the same time (num_cpus=0 actors, 3 on 2 cores)
    first = flow.where[: len(NAMES)]
    assert max(at[3] for at in first) < min(at[4] for at in first), first


def test_gpus_refused_before_the_flow_starts(existing: None) -> None:
    runtime = LocalRuntime(
        aggregator=Aggregator(num_gpus=0.4),
        collaborators=collaborators([*NAMES, "delta"], num_gpus=0.4),
        backend="ray",
    )
    flow = AveragingFlow()
    flow.runtime = runtime
    with pytest.raises(UsageError, match=r"5 participants ask for 2 GPUs in all \(0.4 each\); .* has 0 GPU"):
        flow.run()
    assert runtime.step_outputs == [] and not hasattr(flow, "model")
    assert ray.is_initialized()


def test_one_participant_larger_than_any_node(existing: None) -> None:
    runtime = LocalRuntime(collaborators=collaborators(["alpha"], num_cpus=3), backend="ray")
    flow = AveragingFlow()
    flow.runtime = runtime
    with pytest.raises(UsageError, match="ask for 3 CPUs in all"):
        flow.run()
    assert runtime.step_outputs == []


def test_gpu_packing_refused() -> None:
    from openfl_cli.workflow.participants import Participant
    from openfl_cli.workflow.ray_backend import _check_resources

    five = [Participant(f"p{i}", num_gpus=0.4) for i in range(5)]
    nodes = [{"GPU": 2.0, "CPU": 8.0}]
    with pytest.raises(UsageError, match="cannot span two GPUs"):
        _check_resources(five, {"GPU": 2.0, "CPU": 8.0}, nodes)
    _check_resources(five[:4], {"GPU": 2.0, "CPU": 8.0}, nodes)
    with pytest.raises(UsageError, match="no node of the Ray cluster has that many"):
        _check_resources([Participant("big", num_gpus=2)], {"GPU": 2.0}, [{"GPU": 1.0}, {"GPU": 1.0}])


def test_a_failing_step_raises_its_error(existing: None) -> None:
    runtime = LocalRuntime(collaborators=collaborators(), backend="ray")
    flow = AveragingFlow()
    flow.fail_on = "beta"
    flow.pause = 0.0
    flow.runtime = runtime
    with pytest.raises(ValueError, match="beta cannot train"):
        flow.run()
    assert ray.is_initialized()
