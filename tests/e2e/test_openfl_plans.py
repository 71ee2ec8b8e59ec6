"""OpenFL 1.9's own `plan/` folders, unchanged, run as a real federation of `fx` processes.

`tests/e2e/openfl_plans/{torch,keras}_mnist/plan` are the plan folders that OpenFL 1.9's
`fx workspace create --template torch/mnist` (and `keras/mnist`) writes: plan.yaml, cols.yaml and
data.yaml of the template, and `defaults/` copied from its `workspace/plan/defaults` (taken from the
openfl 1.9 wheel). Each is copied over the `plan/` of an fx workspace created from fx's template of the
same name (so `src/` is fx's own code), certified by the documented flow, and run for two rounds:
an aggregator and two collaborators over mutual TLS on 127.0.0.1.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_fx
from tests.e2e.federation_run import Federation, run_until_done
from tests.e2e.pki_flow import FederationDirs, certify_federation
from tests.runners.helpers import ONE_THREAD, write_tiny_mnist

pytestmark = pytest.mark.e2e

OPENFL_PLANS = Path(__file__).parent / "openfl_plans"
NAMES = ("one", "two")
PROCESS_TIMEOUT = 180.0  # per process; a run takes far less, but the machine is shared
# What the test changes in OpenFL's plans, applied by Federation to every workspace alike:
# - the port (Federation's own, free on this machine) and a short reconnect interval: a collaborator
#   usually starts before the aggregator listens, and OpenFL's 5 s would be most of the test's time;
# - keras/mnist's rounds_to_train (OpenFL's plan trains 10 rounds, minutes here): two rounds.
# The data is a tiny MNIST in data/mnist, where fx's template loaders look by default.
FAST_RECONNECT = {"network": {"settings": {"client_reconnect_interval": 0.3}}}
TWO_ROUNDS = {"aggregator": {"settings": {"rounds_to_train": 2}}}


def _copy_openfl_plan(workspace: Path, plan: str) -> None:
    shutil.rmtree(workspace / "plan")
    shutil.copytree(OPENFL_PLANS / plan / "plan", workspace / "plan")


def certify_openfl_plan(root: Path, template: str, plan: str) -> FederationDirs:
    """The documented flow, on an fx workspace whose plan/ is OpenFL's (data in place first)."""

    def prepare_aggregator(workspace: Path) -> None:
        _copy_openfl_plan(workspace, plan)
        write_tiny_mnist(workspace / "data" / "mnist")
        checked = run_fx(["plan", "validate"], cwd=workspace)
        assert "plan OK" in checked.stdout, checked.stdout + checked.stderr

    def prepare_collaborator(workspace: Path) -> None:
        write_tiny_mnist(workspace / "data" / "mnist")
        # this node's data file as OpenFL writes it (the archive ships an empty one)
        shutil.copy(OPENFL_PLANS / plan / "plan" / "data.yaml", workspace / "plan" / "data.yaml")

    certified = certify_federation(
        root,
        list(NAMES),
        template=template,
        prepare_aggregator=prepare_aggregator,
        prepare_collaborator=prepare_collaborator,
    )
    for index, (name, workspace) in enumerate(certified.collaborators.items(), start=1):
        data_lines = (workspace / "plan" / "data.yaml").read_text()  # `fx collaborator create` kept the form
        assert f"\n{name},{index}\n" in data_lines and "# collaborator_name,data_directory_path" in data_lines
    return certified


@pytest.fixture
def quiet_threads(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every `fx` process on one thread (the machine is shared); TensorFlow's log level is left to fx."""
    for name, value in ONE_THREAD.items():
        if name != "TF_CPP_MIN_LOG_LEVEL":
            monkeypatch.setenv(name, value)
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    yield


def _run_two_rounds(tmp_path: Path, template: str, plan: str, changes: dict[str, Any]) -> Federation:
    certified = certify_openfl_plan(tmp_path / "certified", template, plan)
    federation = Federation(certified, tmp_path / "run", {**FAST_RECONNECT, **changes})
    try:
        codes = run_until_done(federation, timeout=PROCESS_TIMEOUT)
        assert codes == {"aggregator": 0, "one": 0, "two": 0}, federation.all_logs()
    finally:
        federation.close()
    log = federation.log("aggregator.log")
    assert "round 2/2: 2/2 collaborators done" in log, federation.all_logs()
    best = federation.aggregator / "save" / "best.pbuf"
    assert best.is_file(), federation.all_logs()
    assert re.search(r"experiment complete: 2 rounds; .* best model \S*save/best\.pbuf", log), log
    assert (federation.aggregator / "save" / "last.pbuf").is_file()
    return federation


@pytest.mark.torch
@pytest.mark.usefixtures("quiet_threads")
def test_openfl_torch_mnist_plan(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    _run_two_rounds(tmp_path, "torch/mnist", "torch_mnist", {})  # OpenFL's plan trains two rounds


@pytest.mark.keras
@pytest.mark.usefixtures("quiet_threads")
def test_openfl_keras_mnist_plan(tmp_path: Path) -> None:
    # looked up, not imported: importing TensorFlow sets TF_CPP_MIN_LOG_LEVEL in this process, which
    # the fx processes would inherit as if the user had chosen it
    for module in ("tensorflow", "keras"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed")
    federation = _run_two_rounds(tmp_path, "keras/mnist", "keras_mnist", TWO_ROUNDS)
    logs = federation.all_logs()
    # the plan's metric is Keras's `accuracy`: the best model was chosen by it
    assert "aggregated_model_validation accuracy" in logs, logs
    for noise in ("cuInit", "cudart_stub", "absl::InitializeLog"):
        assert noise not in logs, logs
