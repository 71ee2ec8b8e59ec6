"""Real federations: `fx aggregator start` and `fx collaborator start` processes over mutual TLS on
127.0.0.1, with the numpy/digits template, certified with the documented flow (fqdn "localhost")."""

from __future__ import annotations

import ipaddress
import json
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_fx
from tests.e2e.federation_run import Federation, run_until_done
from tests.e2e.pki_flow import FederationDirs, certify_federation

pytestmark = pytest.mark.e2e

# A slower round (more local epochs) so that a kill lands inside a round, and fast reconnection.
SLOW_PLAN = {
    "aggregator": {"settings": {"rounds_to_train": 5}},
    "tasks": {"train": {"function": "train_task", "kwargs": {"epochs": 300, "metrics": ["loss"]}}},
    "network": {"settings": {"client_reconnect_interval": 0.3}},
}


@pytest.fixture(scope="module")
def certified(tmp_path_factory: pytest.TempPathFactory) -> FederationDirs:
    """One certified federation (aggregator, one, two, three) copied by each test."""
    return certify_federation(tmp_path_factory.mktemp("certified"), ["one", "two", "three"])


@pytest.fixture
def make_federation(certified: FederationDirs, tmp_path: Path) -> Iterator:
    made: list[Federation] = []

    def make(name: str = "run", **kwargs: object) -> Federation:
        federation = Federation(certified, tmp_path / name, members=["one", "two"], **kwargs)  # type: ignore[arg-type]
        made.append(federation)
        return federation

    yield make
    for federation in made:
        federation.close()


@pytest.fixture(scope="module")
def reference_model(
    certified: FederationDirs, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, np.ndarray]:
    """The final model of an uninterrupted SLOW_PLAN run."""
    from openfl_cli.tensors.snapshot import load_snapshot

    federation = Federation(
        certified, tmp_path_factory.mktemp("reference") / "run", SLOW_PLAN, ["one", "two"]
    )
    try:
        assert set(run_until_done(federation).values()) == {0}, federation.all_logs()
    finally:
        federation.close()
    return load_snapshot(federation.aggregator / "save" / "last.pbuf").tensors


def accuracies(output: str) -> list[float]:
    return [
        float(v)
        for v in re.findall(r"^round \d+/\d+: .*aggregated_model_validation acc=([\d.]+)", output, re.M)
    ]


def assert_same_model(path: Path, reference: dict[str, np.ndarray]) -> None:
    from openfl_cli.tensors.snapshot import load_snapshot

    model = load_snapshot(path).tensors
    assert sorted(model) == sorted(reference)
    for name, value in reference.items():
        np.testing.assert_array_equal(model[name], value, err_msg=name)


def test_full_experiment(make_federation) -> None:
    federation: Federation = make_federation()
    aggregator = federation.start_aggregator()
    federation.wait_for("aggregator.log", r"aggregator serving")
    ping = run_fx(["collaborator", "ping", "-n", "one"], cwd=federation.collaborators["one"])
    assert "TLS handshake ok" in ping.stdout and "one authorized" in ping.stdout
    assert "plan hash matches (round 1 of 3)" in ping.stdout
    began = time.monotonic()
    workers = [federation.start_collaborator(name) for name in ("one", "two")]
    assert federation.wait(aggregator) == 0, federation.all_logs()
    assert [federation.wait(worker) for worker in workers] == [0, 0], federation.all_logs()
    assert time.monotonic() - began < 30

    output = federation.log("aggregator.log")
    assert len(re.findall(r"^round \d/3: 2/2 collaborators done", output, re.M)) == 3, output
    acc = accuracies(output)
    assert len(acc) == 3 and acc[2] > acc[0], output
    assert "experiment complete: 3 rounds" in output
    assert "the experiment is over" in federation.log("one.log")
    save = federation.aggregator / "save"
    assert all((save / f"{name}.pbuf").is_file() for name in ("init", "best", "last"))
    records = [
        json.loads(line)
        for line in (federation.aggregator / "logs" / "metrics.jsonl").read_text().splitlines()
    ]
    assert {r["node"] for r in records} == {"aggregator", "one", "two"}
    assert {r["round"] for r in records} == {0, 1, 2}
    assert list((federation.aggregator / "logs").glob("events.out.tfevents.*"))
    assert (federation.aggregator / "local_state" / "tensor.db").is_file()


def test_attacks_are_refused(make_federation, tmp_path: Path) -> None:
    from openfl_cli.pki.credentials import collaborator_material
    from openfl_cli.pki.layout import TlsPaths, collaborator_tls_paths
    from openfl_cli.plan import Plan
    from openfl_cli.transport.client import AggregatorClient
    from tests.transport.certs import issue, make_ca

    federation: Federation = make_federation()
    aggregator = federation.start_aggregator()
    federation.wait_for("aggregator.log", r"aggregator serving")
    workspace = federation.aggregator
    plan_hash = Plan.load(workspace / "plan" / "plan.yaml", workspace / "plan" / "cols.yaml", None).hash
    one, two = (collaborator_tls_paths(federation.all_collaborators[n], n) for n in ("one", "two"))

    def ping(name: str, tls: TlsPaths, *, client_cert: bool = True) -> str:
        client = AggregatorClient(
            "localhost", federation.port, name, plan_hash, collaborator_material(tls, client_cert),
            require_client_auth=client_cert, reconnect_interval=0.2, reconnect_timeout=1.0,
        )  # fmt: skip
        try:
            return f"ok: round {client.ping().round_number}"
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        finally:
            client.close()

    assert ping("one", one).startswith("ok")
    no_cert = ping("one", one, client_cert=False)
    assert not no_cert.startswith("ok"), no_cert
    foreign = issue(make_ca(tmp_path / "foreign"), tmp_path / "foreign", "one", server=False)
    forged = ping("one", TlsPaths(one.cert_chain, foreign.certificate, foreign.private_key))
    assert not forged.startswith("ok"), forged
    impostor = ping("one", two)
    assert "not authorized" in impostor and "does not match the sender 'one'" in impostor, impostor

    stranger = run_fx(
        ["collaborator", "ping", "-n", "three"], cwd=federation.all_collaborators["three"], check=False
    )
    assert (
        stranger.returncode == 1 and "not authorized:" in stranger.stdout and "cols.yaml" in stranger.stdout
    )
    start = run_fx(
        ["collaborator", "start", "-n", "three"], cwd=federation.all_collaborators["three"], check=False
    )
    assert start.returncode == 2 and "fx: error: not authorized:" in start.stderr, start.stderr

    run_fx(["collaborator", "remove", "-n", "two"], cwd=workspace)
    revoked = run_fx(["collaborator", "ping", "-n", "two"], cwd=federation.collaborators["two"], check=False)
    assert revoked.returncode == 1 and "revoked" in revoked.stdout, revoked.stdout

    federation.edit_plans(
        {"aggregator": {"settings": {"rounds_to_train": 7}}}, only=[federation.collaborators["one"]]
    )
    mismatch = run_fx(["collaborator", "ping", "-n", "one"], cwd=federation.collaborators["one"], check=False)
    assert mismatch.returncode == 1 and "one authorized; plan mismatch:" in mismatch.stdout, mismatch.stdout
    start = run_fx(["collaborator", "start", "-n", "one"], cwd=federation.collaborators["one"], check=False)
    assert start.returncode == 2 and "fx: error: plan mismatch:" in start.stderr, start.stderr

    assert aggregator.poll() is None, "the aggregator must keep serving"
    assert ping("one", one).startswith("ok")
    bad_results(federation.port, plan_hash, TlsPaths(one.cert_chain, one.certificate, one.private_key))
    assert aggregator.poll() is None
    log = federation.log("aggregator.log")
    assert "does not match the sender" in log and "revoked" in log


def test_aggregator_killed_mid_round_resumes(make_federation, reference_model) -> None:
    federation: Federation = make_federation(plan_changes=SLOW_PLAN)
    first = federation.start_aggregator("aggregator-1.log")
    workers = [federation.start_collaborator(name) for name in ("one", "two")]
    federation.wait_for("aggregator-1.log", r"^round 2/5: ")
    time.sleep(0.15)
    federation.kill(first)
    aggregator = federation.start_aggregator("aggregator-2.log")
    assert federation.wait(aggregator) == 0, federation.all_logs()
    assert [federation.wait(worker) for worker in workers] == [0, 0], federation.all_logs()
    restarted = federation.log("aggregator-2.log")
    assert "resuming after round 2 of 5" in restarted, restarted
    assert not re.search(r"^round [12]/5", restarted, re.M), "completed rounds are not repeated"
    assert_same_model(federation.aggregator / "save" / "last.pbuf", reference_model)


def test_collaborator_killed_and_restarted(make_federation, reference_model) -> None:
    federation: Federation = make_federation(plan_changes=SLOW_PLAN)
    aggregator = federation.start_aggregator()
    one = federation.start_collaborator("one", "one-1.log")
    two = federation.start_collaborator("two")
    federation.wait_for("aggregator.log", r"^round 2/5: ")
    time.sleep(0.15)
    federation.kill(one)
    one = federation.start_collaborator("one", "one-2.log")
    assert federation.wait(aggregator) == 0, federation.all_logs()
    assert [federation.wait(one), federation.wait(two)] == [0, 0], federation.all_logs()
    assert_same_model(federation.aggregator / "save" / "last.pbuf", reference_model)


def test_straggler_cut_off(make_federation) -> None:
    policy = {
        "template": "openfl_cli.federation.straggler.CutoffTimePolicy",
        "settings": {"straggler_cutoff_time": 2.0, "minimum_reporting": 1},
    }
    changes = {
        "aggregator": {"settings": {"rounds_to_train": 2}},
        "straggler_handling_policy": policy,
        "network": {"settings": {"client_reconnect_interval": 0.3}},
    }
    federation: Federation = make_federation(plan_changes=changes)
    aggregator = federation.start_aggregator()
    one = federation.start_collaborator("one")
    two = federation.start_collaborator("two")
    federation.wait_for("two.log", r"connecting to")
    federation.kill(two, signal.SIGSTOP)  # a straggler: alive, connected, silent
    federation.wait_for("aggregator.log", r"^round 1/2: 1/2 collaborators done")
    federation.kill(two, signal.SIGCONT)
    assert federation.wait(aggregator) == 0, federation.all_logs()
    assert [federation.wait(one), federation.wait(two)] == [0, 0], federation.all_logs()
    assert "experiment complete: 2 rounds" in federation.log("aggregator.log")


def bad_results(port: int, plan_hash: str, tls: object) -> None:
    """Results of the wrong shape, dtype or with NaN are refused; the aggregator stays up."""
    from openfl_cli.pki.credentials import collaborator_material
    from openfl_cli.transport.client import AggregatorClient
    from openfl_cli.transport.messages import Action, RefusalCode, Refused

    material = collaborator_material(tls)  # type: ignore[arg-type]
    client = AggregatorClient("localhost", port, "one", plan_hash, material, reconnect_timeout=2.0)
    try:
        assignment = client.get_tasks(5.0)
        assert assignment.action is Action.RUN
        model = client.get_model(assignment.round_number)
        wrong_shape = {"W": np.zeros((3, 3), np.float32)}
        wrong_dtype = {"W": model["W"].astype(np.float64)}
        not_finite = {"W": np.full_like(model["W"], np.nan)}
        for tensors, reason in ((wrong_shape, "[3, 3]"), (wrong_dtype, "float64"), (not_finite, "NaN")):
            with pytest.raises(Refused) as refused:
                client.send_result(assignment.round_number, "train", {"loss": 1.0}, 10, tensors)
            assert refused.value.code is RefusalCode.INVALID and reason in refused.value.reason
    finally:
        client.close()


def test_variants_global_optimizer_deltas_compression_native(make_federation) -> None:
    changes = {
        "aggregator": {
            "settings": {
                "rounds_to_train": 2,
                "save_native_model": True,
                "write_logs": False,
                "log_metric_callback": "src.metric_log.record",
            }
        },
        "collaborator": {"settings": {"opt_treatment": "CONTINUE_GLOBAL", "use_delta_updates": True}},
        "compression_pipeline": {
            "template": "openfl_cli.tensors.pipelines.QuantizationPipeline",
            "settings": {"n_bits": 8},
        },
    }
    federation: Federation = make_federation(plan_changes=changes)
    (federation.aggregator / "src" / "metric_log.py").write_text(
        "def record(node, task, metric, round_number, value):\n"
        "    with open('callback.txt', 'a') as out:\n"
        "        out.write(f'{node} {task} {metric} {round_number} {value}\\n')\n"
    )
    assert set(run_until_done(federation).values()) == {0}, federation.all_logs()
    called = (federation.aggregator / "callback.txt").read_text().splitlines()
    assert any(line.startswith("aggregator aggregated_model_validation acc 1 ") for line in called), called
    assert any(line.startswith("two train loss 0 ") for line in called), called
    assert "optimizer tensor(s) join the global model" in federation.log("aggregator.log")
    assert "saved by compression" in federation.log("one.log")
    assert (federation.aggregator / "save" / "native").is_file()
    assert not (federation.aggregator / "logs" / "metrics.jsonl").exists()
    from openfl_cli.tensors.snapshot import load_snapshot

    last = load_snapshot(federation.aggregator / "save" / "last.pbuf").tensors
    assert any(name.startswith("__opt__.") for name in last)
    assert all(np.isfinite(value).all() for value in last.values())


def test_collaborator_gives_up_when_the_aggregator_is_gone(make_federation) -> None:
    changes = {"network": {"settings": {"client_reconnect_interval": 0.2, "client_reconnect_timeout": 1.5}}}
    federation: Federation = make_federation(plan_changes=changes)
    began = time.monotonic()
    result = run_fx(["collaborator", "start", "-n", "one"], cwd=federation.collaborators["one"], check=False)
    assert result.returncode == 1, result.stderr
    assert "unreachable for 2 s" in result.stderr or "unreachable" in result.stderr, result.stderr
    assert time.monotonic() - began < 15


def _listening_addresses(port: int) -> set[str]:
    """The local addresses with a socket listening on `port`, from Linux's socket tables (gRPC may
    listen on an IPv6 socket for an IPv4 address: shown as that IPv4 address)."""
    found = set()
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        if not table.exists():  # no IPv6 in this kernel
            continue
        for line in table.read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address_hex, port_hex = local.split(":")
            if state != "0A" or int(port_hex, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(address_hex)  # 32-bit words in host (little-endian) order
            packed = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            address = ipaddress.ip_address(packed)
            mapped = getattr(address, "ipv4_mapped", None)
            found.add(str(mapped or address))
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's socket table")
def test_the_aggregator_listens_where_the_plan_says(make_federation) -> None:
    federation: Federation = make_federation(
        plan_changes={"network": {"settings": {"bind_addr": "127.0.0.1"}}}
    )
    aggregator = federation.start_aggregator()
    federation.wait_for("aggregator.log", rf"listening on 127\.0\.0\.1:{federation.port}")
    assert _listening_addresses(federation.port) == {"127.0.0.1"}
    ping = run_fx(["collaborator", "ping", "-n", "one"], cwd=federation.collaborators["one"])
    assert "TLS handshake ok" in ping.stdout and "plan hash matches" in ping.stdout, ping.stdout
    federation.kill(aggregator)
