"""Initial models (PTModel, TFModel), picked by type without importing the frameworks, and the
FedAvgJob pattern."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from openfl_cli.errors import UsageError
from openfl_cli.job.models import wrap_model
from openfl_cli.tensors.snapshot import load_snapshot
from tests.conftest import REPO_ROOT


def test_an_unknown_model_is_refused_without_importing_a_framework() -> None:
    code = (
        "import sys\n"
        "from openfl_cli.job import FedAvgJob\n"
        "from openfl_cli.errors import UsageError\n"
        "try:\n"
        "    FedAvgJob(name='j', num_rounds=1, n_clients=1, initial_model=[1, 2])\n"
        "except UsageError as error:\n"
        "    print('REFUSED', error)\n"
        "print('LOADED', [m for m in ('torch', 'keras', 'tensorflow') if m in sys.modules])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=True
    )
    assert "REFUSED initial_model: expected a torch.nn.Module or a keras.Model" in done.stdout
    assert "LOADED []" in done.stdout
    with pytest.raises(UsageError, match=r"expected a torch\.nn\.Module"):
        wrap_model(object())


@pytest.mark.torch
def test_pt_model_exports_the_state_dict_with_buffers(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from openfl_cli.job import FedAvg, FedJob, PTModel, ScriptRunner

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    net[2].to(torch.bfloat16)
    script = tmp_path / "train.py"
    script.write_text("")
    job = FedJob("pt")
    assert job.to_server(PTModel(net)) == "save/init.pbuf"
    job.to_server(FedAvg(num_clients=1, num_rounds=1))
    job.to_clients(ScriptRunner(str(script)))
    tensors = load_snapshot(job.export_job(tmp_path / "jobs") / "save" / "init.pbuf").tensors
    assert list(tensors) == list(net.state_dict())
    assert tensors["1.num_batches_tracked"].dtype == np.int64
    assert tensors["2.weight"].dtype == np.float32  # bfloat16 travels as float32, as the torch runner does
    np.testing.assert_array_equal(tensors["0.weight"], net[0].weight.detach().numpy())
    with pytest.raises(UsageError, match="already has an initial model"):
        job.to_server(PTModel(net))
    with pytest.raises(UsageError, match="belongs to the server"):
        job.to(PTModel(net), "site-1")
    with pytest.raises(UsageError, match=r"expected a torch\.nn\.Module"):
        FedJob("x").to_server(PTModel("not a model"))


@pytest.mark.torch
def test_fedavg_job_for_torch(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from openfl_cli.job import FedAvgJob, ScriptRunner
    from openfl_cli.plan import Plan

    script = tmp_path / "train.py"
    script.write_text("")
    net = torch.nn.Linear(2, 1)
    job = FedAvgJob(name="fedavg", num_rounds=3, n_clients=2, initial_model=net, mandatory_clients=["site-2"])
    job.to_clients(ScriptRunner(str(script)))
    root = job.export_job(tmp_path)
    spec = Plan.load(
        root / "plan" / "plan.yaml", root / "plan" / "cols.yaml", root / "plan" / "data.yaml"
    ).experiment()
    assert spec.aggregator.rounds_to_train == 3 and spec.collaborators == ("site-1", "site-2")
    assert spec.aggregator.outputs.best.metric == "accuracy" and spec.aggregator.outputs.best.task == "train"
    assert sorted(load_snapshot(root / "save" / "init.pbuf").tensors) == ["bias", "weight"]
    meta = json.loads((root / "meta.json").read_text())
    assert (meta["min_clients"], meta["mandatory_clients"]) == (1, ["site-2"])
    # n_clients at export adds to the pattern's own clients only if it differs
    with pytest.raises(UsageError, match=r"num_clients=2\): the job has 3 clients"):
        job.export_job(tmp_path, n_clients=3)


@pytest.mark.keras
def test_tf_model_uses_the_keras_runners_weight_names(tmp_path: Path) -> None:
    keras = pytest.importorskip("keras")
    from openfl_cli.job import FedAvgJob, ScriptRunner, TFModel
    from openfl_cli.runners.keras import _weight_names

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(2)])
    script = tmp_path / "train.py"
    script.write_text("")
    job = FedAvgJob(name="keras", num_rounds=1, n_clients=1, initial_model=model)
    job.to_clients(ScriptRunner(str(script), framework="keras"))
    tensors = load_snapshot(job.export_job(tmp_path) / "save" / "init.pbuf").tensors
    assert list(tensors) == list(_weight_names(model)) == ["0/kernel", "0/bias", "1/kernel", "1/bias"]
    np.testing.assert_array_equal(tensors["1/kernel"], model.layers[1].kernel.numpy())
    unbuilt = keras.Sequential([keras.layers.Dense(2)])
    with pytest.raises(UsageError, match="no weights yet"):
        FedAvgJob(name="k2", num_rounds=1, n_clients=1, initial_model=TFModel(unbuilt))
