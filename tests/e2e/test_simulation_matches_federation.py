"""The simulator and a real federation of the same plan and seeds end with equal models.

The real one: `fx aggregator start` and two `fx collaborator start` processes over mutual TLS on
127.0.0.1 (numpy/digits, certified with the documented flow). The simulated one: `fx simulate` on a copy
of the aggregator's workspace with the same collaborators and data paths. With two collaborators the
weighted sums do not depend on the order results arrive in, so the models must be equal bit for bit.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from openfl_cli.tensors.snapshot import load_snapshot
from tests.conftest import run_fx
from tests.e2e.federation_run import Federation, run_until_done
from tests.e2e.pki_flow import FederationDirs, certify_federation

pytestmark = pytest.mark.e2e

PLAN = {
    "aggregator": {"settings": {"rounds_to_train": 3}},
    "network": {"settings": {"client_reconnect_interval": 0.3}},
}


def aggregated_metrics(workspace: Path) -> dict[tuple[int, str, str], float]:
    lines = (workspace / "logs" / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    return {(r["round"], r["task"], r["metric"]): r["value"] for r in records if r["node"] == "aggregator"}


@pytest.fixture(scope="module")
def certified(tmp_path_factory: pytest.TempPathFactory) -> FederationDirs:
    return certify_federation(tmp_path_factory.mktemp("certified"), ["one", "two"])


@pytest.mark.parametrize(
    "opt_treatment",
    # CONTINUE_LOCAL: each collaborator's own optimizer state carries over, though the simulator
    # lends one runner to all of them
    ["RESET", "CONTINUE_LOCAL"],
)
def test_a_simulation_ends_with_the_model_of_the_real_federation(
    certified: FederationDirs, tmp_path: Path, opt_treatment: str
) -> None:
    plan = {**PLAN, "collaborator": {"settings": {"opt_treatment": opt_treatment}}}
    federation = Federation(certified, tmp_path / "real", plan, ["one", "two"])
    try:
        assert set(run_until_done(federation).values()) == {0}, federation.all_logs()
    finally:
        federation.close()
    real = federation.aggregator

    simulated = tmp_path / "simulated"
    shutil.copytree(real, simulated, ignore=shutil.ignore_patterns("save", "logs", "local_state", "cert"))
    (simulated / "save").mkdir()
    shutil.copy(real / "save" / "init.pbuf", simulated / "save" / "init.pbuf")
    (simulated / "plan" / "data.yaml").write_text("one: '1'\ntwo: '2'\n")  # as each collaborator has it
    done = run_fx(["simulate"], cwd=simulated)
    assert "simulated 2 collaborators x 3 rounds" in done.stdout, done.stdout

    for name in ("last", "best"):
        expected = load_snapshot(real / "save" / f"{name}.pbuf")
        got = load_snapshot(simulated / "save" / f"{name}.pbuf")
        assert got.round_number == expected.round_number
        assert sorted(got.tensors) == sorted(expected.tensors)
        for tensor, value in expected.tensors.items():
            np.testing.assert_array_equal(got.tensors[tensor], value, err_msg=f"{name}.pbuf {tensor}")
    initial = load_snapshot(real / "save" / "init.pbuf").tensors
    assert not np.array_equal(initial["W"], load_snapshot(real / "save" / "last.pbuf").tensors["W"])
    assert aggregated_metrics(simulated) == aggregated_metrics(real)
