"""The FederatedRuntime end to end: a director, two envoys and the experimenter as separate processes,
over mutual TLS on 127.0.0.1 with certificates from fx's own authority (and once without TLS).

The seed's FederatedFlow runs from a script and from a notebook and ends with the model the
LocalRuntime computes with the same seeds; an envoy's admin rejects an experiment; an envoy killed
mid-experiment fails it, naming the envoy, and rejoins when restarted; strangers are refused.
"""

from __future__ import annotations

import importlib.util
import json
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

torch = pytest.importorskip("torch")
nbformat = pytest.importorskip("nbformat")

from openfl_cli.workflow import Aggregator, Collaborator, LocalRuntime  # noqa: E402
from tests.conftest import REPO_ROOT, run_fx  # noqa: E402
from tests.e2e.director_run import (  # noqa: E402
    ENVOYS,
    HOST,
    PRIVATE_ATTRIBUTES,
    Certified,
    Services,
    certify,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.torch]

SEED_SCRIPT = """
import json, sys
import torch
from tests.workflow.seed_flows import FederatedFlow
from openfl_cli.workflow import FederatedRuntime

director, tls = json.loads(sys.argv[1]), sys.argv[2] == "tls"
rounds, checkpoint = int(sys.argv[3]), sys.argv[4] == "1"
torch.manual_seed(0)
flow = FederatedFlow(rounds=rounds, checkpoint=checkpoint)
flow.runtime = FederatedRuntime(collaborators=["env_one", "env_two"], director=director, tls=tls)
print("envoys:", [(e.name, e.online) for e in flow.runtime.get_envoys()])
flow.run()
torch.save(flow.model.state_dict(), "model.pt")
result = {"round": flow.current_round, "accuracy": flow.aggregated_model_accuracy, "loss": flow.average_loss,
          "private": flow.private, "has_training_completed": hasattr(flow, "training_completed")}
json.dump(result, open("result.json", "w"))
"""

# runs a notebook's code cells in __main__, one after the other, as a Jupyter kernel does
NOTEBOOK_DRIVER = """
import sys
import nbformat
notebook = nbformat.read(sys.argv[1], as_version=4)
for cell in notebook.cells:
    if cell.cell_type == "code":  # IPython runs the magics itself: here they are left out
        code = "\\n".join(line for line in cell.source.splitlines() if not line.startswith(("%", "!")))
        exec(compile(code, sys.argv[1], "exec"), globals())
"""


CHECKPOINT_READER = """
import json
from metaflow import Flow
run = Flow("FederatedFlow").latest_run
tasks = [(s.id, t.metadata_dict.get("participant")) for s in run for t in s]
joins = sorted(run["join"], key=lambda t: t.data.current_round)
print(json.dumps({"tasks": tasks, "model": type(joins[-1].data.model).__name__,
                  "rounds": [t.data.current_round for t in joins]}))
"""


def _seed_notebook(path: Path, director: dict[str, object], checkpoint: bool) -> None:
    seed_code = (REPO_ROOT / "tests" / "workflow" / "seed_flows.py").read_text()
    seed_code = seed_code.replace("from __future__ import annotations\n", "")
    cells = [
        nbformat.v4.new_markdown_cell("# The seed's FederatedFlow on a director and two envoys"),
        nbformat.v4.new_code_cell("%pip install torch\nimport json\nimport torch"),
        nbformat.v4.new_code_cell(seed_code),
        nbformat.v4.new_code_cell(
            "from openfl_cli.workflow import FederatedRuntime\n"
            f"director_info = {director!r}\n"
            "runtime = FederatedRuntime(collaborators=['env_one', 'env_two'], director=director_info,\n"
            f"                           notebook_path={str(path)!r}, tls=True)"
        ),
        nbformat.v4.new_code_cell(
            f"torch.manual_seed(0)\nflow = FederatedFlow(rounds=2, checkpoint={checkpoint})\n"
            "flow.runtime = runtime\nflow.run()"
        ),
        nbformat.v4.new_code_cell(
            "torch.save(flow.model.state_dict(), 'model.pt')\n"
            "result = {'round': flow.current_round, 'accuracy': flow.aggregated_model_accuracy}\n"
            "json.dump(result, open('result.json', 'w'))"
        ),
    ]
    notebook = nbformat.v4.new_notebook(cells=cells)
    nbformat.write(notebook, str(path))


def _private_module(tmp_path: Path) -> ModuleType:
    path = tmp_path / "reference_private_attributes.py"
    path.write_text(PRIVATE_ATTRIBUTES)
    spec = importlib.util.spec_from_file_location("reference_private_attributes", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def local_reference(tmp_path: Path, rounds: int) -> object:
    """The same flow with the same seeds and the same envoys' data, on the LocalRuntime."""
    from tests.workflow.seed_flows import FederatedFlow

    private = _private_module(tmp_path)
    collaborators = [
        Collaborator(
            name, private_attributes_callable=private.envoy_attrs, index=i, n_collaborators=len(ENVOYS)
        )
        for i, name in enumerate(ENVOYS)
    ]
    torch.manual_seed(0)
    flow = FederatedFlow(rounds=rounds)
    flow.runtime = LocalRuntime(aggregator=Aggregator(), collaborators=collaborators)
    flow.run()
    return flow


def _assert_same_model(model_file: Path, reference: object) -> None:
    received = torch.load(model_file)
    expected = reference.model.state_dict()  # type: ignore[attr-defined]
    assert set(received) == set(expected)
    for name, tensor in expected.items():
        assert torch.equal(received[name], tensor), name


@pytest.fixture(scope="module")
def certified(tmp_path_factory: pytest.TempPathFactory) -> Certified:
    return certify(tmp_path_factory.mktemp("certified"))


@pytest.fixture
def services(certified: Certified, tmp_path: Path) -> Iterator[Services]:
    running = Services(certified, tmp_path / "run")
    try:
        yield running
    finally:
        running.stop_all()


def _start(services: Services, review: dict[str, str] | None = None) -> None:
    services.start_director()
    for name in ENVOYS:
        services.start_envoy(name, review=(review or {}).get(name, "accept"))


def test_the_seed_flow_from_a_script_over_mtls_matches_the_local_runtime(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _start(services)
    director = services.certified.user_director_info(services.port)
    done = services.run_user(SEED_SCRIPT, json.dumps(director), "tls", "2", "0")
    assert done.returncode == 0, done.stdout + done.stderr
    # every participant's output reached the user, prefixed as on the LocalRuntime
    assert "[aggregator/start] Performing initialization for model" in done.stdout
    for name in ENVOYS:
        assert f"[{name}/train] Train Epoch: 1" in done.stdout
    assert "envoys: [('env_one', True), ('env_two', True)]" in done.stdout
    result = json.loads((services.root / "user" / "result.json").read_text())
    assert result["round"] == 2 and result["private"] == 10 and not result["has_training_completed"]
    monkeypatch.chdir(tmp_path)  # the seed's train step saves model.pth where it runs
    reference = local_reference(tmp_path, rounds=2)
    assert result["accuracy"] == reference.aggregated_model_accuracy  # type: ignore[attr-defined]
    assert result["loss"] == reference.average_loss  # type: ignore[attr-defined]
    _assert_same_model(services.root / "user" / "model.pt", reference)
    # the listing command shows both envoys online, from their health reports
    listing = run_fx(
        ["director", "envoys", "-dh", HOST, "-dp", str(services.port), *_user_tls(services)],
        cwd=services.root,
    )
    assert re.search(r"env_one\s+online", listing.stdout) and re.search(r"env_two\s+online", listing.stdout)


def _user_tls(services: Services) -> list[str]:
    info = services.certified.user_director_info(services.port)
    return ["-rc", str(info["cert_chain"]), "-pk", str(info["api_private_key"]), "-oc", str(info["api_cert"])]


def test_the_seed_flow_from_a_notebook_checkpointed_at_the_director(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _start(services)
    notebook = services.folder("user") / "seed_flow.ipynb"
    _seed_notebook(notebook, services.certified.user_director_info(services.port), checkpoint=True)
    driver = services.folder("user") / "run_notebook.py"
    driver.write_text(NOTEBOOK_DRIVER)
    done = services.run_user(f"exec(open({str(driver)!r}).read())", str(notebook))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[env_two/local_model_validation] Doing local model validation" in done.stdout
    # the runtime cell and the data loading were not exported: no certificate path reached anyone
    director_files = "".join(
        p.read_text(errors="replace") for p in (services.root / "director").rglob("*.py")
    )
    assert "experimenter_alice" not in director_files and "cert_chain" not in director_files
    monkeypatch.chdir(tmp_path)
    reference = local_reference(tmp_path, rounds=2)
    _assert_same_model(services.root / "user" / "model.pt", reference)
    # the real Metaflow client reads the director's checkpoint, models included (with the experiment's
    # code on its path, as the director's status line says)
    pytest.importorskip("metaflow")
    from tests.workflow.test_checkpoint import read_with_client

    (code,) = (services.root / "director" / ".fx-director").glob("*/fx_experiment_*.py")
    read = read_with_client(
        CHECKPOINT_READER,
        services.root / "director",
        env={"METAFLOW_USER": "tester", "PYTHONPATH": str(code.parent)},
    )
    assert {"start", "train", "join", "end"} <= {step for step, _ in read["tasks"]}
    assert ["train", "env_two"] in read["tasks"] and ["join", "aggregator"] in read["tasks"]
    assert read["model"] == "Net" and read["rounds"] == [1, 2]
    assert "checkpoint: run FederatedFlow/" in done.stdout


def test_without_tls_the_same_flow_runs(services: Services) -> None:
    services.tls = False
    _start(services)
    director = {"director_node_fqdn": HOST, "director_port": services.port}
    done = services.run_user(SEED_SCRIPT, json.dumps(director), "plain", "1", "0")
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads((services.root / "user" / "result.json").read_text())["round"] == 1
    assert "--disable-tls: no encryption and no authentication" in services.log("director")


def test_an_experiment_rejected_under_review(services: Services) -> None:
    _start(services, review={"env_two": "review"})
    director = services.certified.user_director_info(services.port)
    user = services.start_user(SEED_SCRIPT, json.dumps(director), "tls", "1", "0")
    envoy_log = services.root / "env_two" / "envoy.log"
    found = wait_for(envoy_log, r"awaits review: hash ([0-9a-f]{64})", services.processes["env_two"], 120)
    pending = run_fx(["envoy", "pending", "-n", "env_two"], cwd=services.root / "env_two")
    assert found.group(1) in pending.stdout and "experiment.py" in pending.stdout
    run_fx(
        ["envoy", "reject", found.group(1)[:12], "-n", "env_two", "--reason", "not on my patients"],
        cwd=services.root / "env_two",
    )
    assert user.wait(timeout=120) != 0
    output = (services.root / "user" / "user.log").read_text()
    assert "envoy env_two rejected experiment" in output and "not on my patients" in output
    # nothing of it ran or was imported at env_two; env_one accepted by policy but never ran a step
    assert not (services.root / "env_two" / "experiments").exists()
    assert "[env_one/" not in output and "[env_two/" not in output
    # the next one, accepted, runs
    again = services.start_user(SEED_SCRIPT, json.dumps(director), "tls", "1", "0", name="user2")
    found = wait_for(
        envoy_log,
        r"awaits review[\s\S]*awaits review: hash ([0-9a-f]{64})",
        services.processes["env_two"],
        120,
    )
    run_fx(["envoy", "accept", found.group(1), "-n", "env_two"], cwd=services.root / "env_two")
    assert again.wait(timeout=180) == 0, (services.root / "user2" / "user.log").read_text()


SLOW_FLOW = """
import json, sys, time
from openfl_cli.workflow import FLSpec, FederatedRuntime, aggregator, collaborator


class SlowFlow(FLSpec):
    @aggregator
    def start(self):
        self.collaborators = self.runtime.collaborators
        self.next(self.work, foreach="collaborators")

    @collaborator
    def work(self):
        print(f"{self.input} working", flush=True)
        time.sleep(0 if self.input == "env_one" else self.sleep_seconds)
        self.done = self.input
        self.next(self.join)

    @aggregator
    def join(self, inputs):
        self.names = sorted(i.done for i in inputs)
        self.next(self.end)

    @aggregator
    def end(self):
        print("ended with", self.names)


if __name__ == "__main__":
    flow = SlowFlow()
    flow.sleep_seconds = float(sys.argv[2])
    flow.runtime = FederatedRuntime(collaborators=["env_one", "env_two"], director=json.loads(sys.argv[1]))
    flow.run()
"""


def test_an_envoy_killed_mid_experiment_fails_it_and_rejoins(services: Services) -> None:
    _start(services)
    director = json.dumps(services.certified.user_director_info(services.port))
    user = services.start_user(SLOW_FLOW, director, "600")
    wait_for(services.root / "user" / "user.log", r"\[env_two/work\] env_two working", user, 120)
    killed = time.monotonic()
    services.stop("env_two", signal.SIGKILL)
    assert user.wait(timeout=30) != 0
    assert time.monotonic() - killed < 15  # 2 missed reports of 1 s and a margin, not a hang
    output = (services.root / "user" / "user.log").read_text()
    assert "envoy env_two went offline" in output and "during step work" in output
    services.start_envoy("env_two")
    done = services.run_user(SLOW_FLOW, director, "0", name="user2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ended with ['env_one', 'env_two']" in done.stdout


def test_strangers_are_refused(services: Services, certified: Certified, tmp_path: Path) -> None:
    import grpc

    from openfl_cli.errors import FxError
    from openfl_cli.pki.nodes import node_tls_material
    from openfl_cli.transport.director.client import EnvoyClient, ExperimenterClient
    from openfl_cli.transport.messages import AggregatorRefused
    from openfl_cli.transport.retry import RetryPolicy

    services.start_director()
    quick = RetryPolicy(0.2, 1.0)
    # no certificate at all: the handshake refuses it
    chain = (certified.envoys["env_one"] / "cert" / "cert_chain.crt").read_bytes()
    channel = grpc.secure_channel(f"{HOST}:{services.port}", grpc.ssl_channel_credentials(chain))
    health = channel.unary_unary("/openfl_cli.director.EnvoyLink/Health")
    with pytest.raises(grpc.RpcError) as refused:
        health(b"", timeout=10, metadata=(("fx-sender", "env_one"),))
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    channel.close()
    # a certificate from another authority
    foreign = certify(tmp_path / "foreign", envoys=("env_one",))
    client = EnvoyClient(
        HOST,
        services.port,
        "env_one",
        node_tls_material(foreign.envoys["env_one"], "envoy", "env_one"),
        retry=quick,
    )
    with pytest.raises(FxError, match=r"rejected this envoy's certificate|TLS"):
        client.health()
    client.close()
    # env_one's own certificate, claiming to be env_two: refused by name, through the real command
    envoy = services.start_envoy("env_two", cert_of="env_one", wait=False)
    assert envoy.wait(timeout=60) == 2
    assert "does not match the sender 'env_two'" in services.log("env_two")
    # an experimenter's certificate knocking on the envoys' service, and the reverse
    alice = node_tls_material(certified.user, "experimenter", "alice")
    client = EnvoyClient(HOST, services.port, "alice", alice, retry=quick)
    with pytest.raises(AggregatorRefused, match="admits envoys only"):
        client.health()
    client.close()
    as_envoy = ExperimenterClient(
        HOST,
        services.port,
        "env_one",
        node_tls_material(certified.envoys["env_one"], "envoy", "env_one"),
        retry=quick,
    )
    with pytest.raises(AggregatorRefused, match="admits experimenters only"):
        as_envoy.list_envoys()
    as_envoy.close()


class _Boom:
    """Unpickles into os.system(...): what a hostile experimenter could send as a flow attribute."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return os.system, (f"touch {self.marker}",)


def test_a_payload_that_would_run_os_system_is_refused(
    services: Services, certified: Certified, tmp_path: Path
) -> None:
    import pickle

    from openfl_cli.pki.nodes import node_tls_material
    from openfl_cli.proto import director_pb2 as dpb
    from openfl_cli.transport.director.client import ExperimenterClient
    from openfl_cli.workflow.experiment import package_experiment

    _start(services)
    script = tmp_path / "tiny_flow.py"
    script.write_text(SLOW_FLOW)
    package = package_experiment(script, "SlowFlow")
    marker = tmp_path / "owned"
    payload = pickle.dumps({"gift": _Boom(marker)}, protocol=5)
    client = ExperimenterClient(
        HOST, services.port, "alice", node_tls_material(certified.user, "experimenter", "alice")
    )
    submitted = client.submit(
        dpb.SubmissionHeader(
            name="SlowFlow", collaborators=list(ENVOYS), flow_class="SlowFlow", archive=package.archive
        ),
        payload,
        {},
    )
    events = list(client.watch(submitted.experiment))
    client.close()
    finished = events[-1].finished
    assert not finished.ok and "system, which is not allowed" in finished.error
    assert not marker.exists()
    assert "[env_one/" not in "".join(e.output.text for e in events)
