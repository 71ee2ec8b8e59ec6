"""The FedJob API end to end: the seed's cifar10_fedavg job, rewritten for the bundled digits, on the
simulator in-process and ex-process (the global model's accuracy rises), exported and run as a real
federation of `fx` processes over mutual TLS (the same model as the simulator's, for the same seeds),
and a failing script failing the run with the site's name."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from openfl_cli.errors import FxError  # noqa: E402
from openfl_cli.tensors.snapshot import load_snapshot  # noqa: E402
from tests.conftest import run_fx  # noqa: E402
from tests.e2e.federation_run import Federation, run_until_done  # noqa: E402
from tests.e2e.fedjob_digits.job import SRC, digits_job  # noqa: E402
from tests.e2e.pki_flow import certify_federation  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.torch]
SITES = ["site-1", "site-2"]


def global_accuracy(workspace: Path) -> dict[int, float]:
    """The aggregated `accuracy` of the train task per round: the global model each round started with."""
    found: dict[int, float] = {}
    for line in (workspace / "logs" / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["node"] in ("aggregator", "simulator") and record["metric"] == "accuracy":
            found[int(record["round"])] = float(record["value"])
    return found


def last_model(workspace: Path) -> dict[str, np.ndarray]:
    return load_snapshot(workspace / "save" / "last.pbuf").tensors


def assert_same_model(found: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert set(found) == set(expected)
    for name, array in expected.items():
        np.testing.assert_array_equal(found[name], array, err_msg=name)


@pytest.fixture(scope="module")
def in_process(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("in_process")
    digits_job(2, num_rounds=3).simulator_run(str(work), n_clients=2, threads=2)
    return work / "digits_fedavg"


def test_the_job_learns_on_the_simulator_in_process(in_process: Path) -> None:
    accuracy = global_accuracy(in_process)
    assert sorted(accuracy) == [0, 1, 2], accuracy
    assert accuracy[2] > accuracy[0] + 0.2, accuracy
    assert (in_process / "save" / "best.pbuf").is_file()
    meta = json.loads((in_process / "meta.json").read_text())
    assert meta["name"] == "digits_fedavg" and meta["min_clients"] == 2


def test_ex_process_scripts_end_with_the_same_model(in_process: Path, tmp_path: Path) -> None:
    digits_job(2, num_rounds=3, launch_external_process=True).simulator_run(str(tmp_path), n_clients=2)
    assert_same_model(last_model(tmp_path / "digits_fedavg"), last_model(in_process))


def test_the_exported_job_runs_as_a_real_federation_with_the_same_model(
    in_process: Path, tmp_path: Path
) -> None:
    job = digits_job(2, num_rounds=3)
    job.export_job(str(tmp_path / "jobs"))
    exported = tmp_path / "jobs" / "digits_fedavg"
    assert (exported / "src" / "digits_fl.py").is_file() and (exported / "src" / "net.py").is_file()
    dirs = certify_federation(
        tmp_path / "pki", SITES, source=exported, data_paths={site: site for site in SITES}
    )
    federation = Federation(dirs, tmp_path / "run")
    try:
        codes = run_until_done(federation, timeout=240)
        assert codes == {"aggregator": 0, "site-1": 0, "site-2": 0}, federation.all_logs()
    finally:
        federation.close()
    assert_same_model(last_model(federation.aggregator), last_model(in_process))


def test_a_failing_script_fails_the_run_naming_the_site(tmp_path: Path) -> None:
    job = digits_job(2, num_rounds=1, extra_args="--fail")
    with pytest.raises(FxError, match=r"site-\d.*told to fail"):
        job.simulator_run(str(tmp_path), n_clients=2)
    # and through the command line: a non-zero exit, one line naming the site
    done = run_fx(["simulate"], cwd=tmp_path / "digits_fedavg", check=False)
    assert done.returncode != 0
    assert "told to fail" in done.stderr and "site-" in done.stderr


def test_fedavg_job_pattern(tmp_path: Path) -> None:
    import sys

    from openfl_cli.job import FedAvgJob, ScriptRunner

    sys.path.insert(0, str(SRC))
    from net import Net

    torch.manual_seed(0)
    job = FedAvgJob(name="digits_pattern", num_rounds=2, n_clients=2, initial_model=Net())
    job.to_clients(ScriptRunner(script=str(SRC / "digits_fl.py"), script_args="--n_clients 2"))
    job.to_clients(str(SRC / "net.py"))
    job.simulator_run(str(tmp_path), n_clients=2)
    accuracy = global_accuracy(tmp_path / "digits_pattern")
    assert accuracy[1] > accuracy[0], accuracy
