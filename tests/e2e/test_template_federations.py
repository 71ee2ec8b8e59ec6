"""One round of a real federation per image template: `fx aggregator start` and two `fx collaborator
start` processes over mutual TLS on 127.0.0.1, each collaborator on tiny data in the template's
on-disk form (Kather 2016 class folders of .tif tiles; BraTS case folders of NIfTI volumes).

`tests/e2e/pki_flow.certify_federation` runs `fx plan initialize` right after `fx workspace create`,
which builds the template's data loader: the image templates need their data (and their tiny plan
sizes) in place before that, so this module certifies with its own copy of the documented flow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import fx_env, run_fx
from tests.e2e.federation_run import Federation, deep_update, run_until_done
from tests.e2e.pki_flow import FederationDirs, certify_federation
from tests.runners.helpers import ONE_THREAD, write_tiny_brats, write_tiny_histology

pytestmark = pytest.mark.e2e

NAMES = ("one", "two")
PROCESS_TIMEOUT = 150.0  # per process; a run takes far less, but the machine is shared
# collaborators usually start before the aggregator listens: retry soon, not after the default 5 s
FAST_RECONNECT = {"network": {"settings": {"client_reconnect_interval": 0.3}}}


def _histology(*folders: str) -> Callable[[Path], None]:
    def write(workspace: Path) -> None:
        for folder in folders:
            write_tiny_histology(workspace / folder, per_class=3, size=32)

    return write


def _brats(folder: str) -> Callable[[Path], None]:
    def write(workspace: Path) -> None:
        write_tiny_brats(workspace / folder / "MICCAI_BraTS2020_TrainingData", cases=4, side=32, depth=4)

    return write


@dataclass(frozen=True)
class Template:
    name: str
    suffix: str  # of the native model `fx model save` writes
    metric: str  # what aggregated_model_validation reports
    plan: dict[str, Any]
    write_data: Callable[[Path], None]  # tiny data set into a workspace, where the plan looks for it
    # the collaborator's data path (`fx collaborator create -d`): a shard number of the data set the
    # plan's folder holds, or a folder of this collaborator's own data
    data_path: Callable[[int], str] = field(default=str)
    custom_objects_module: str | None = None  # imported before keras.saving.load_model


def _tiny(data: dict[str, Any], runner: dict[str, Any] | None = None) -> dict[str, Any]:
    plan = {
        "aggregator": {"settings": {"rounds_to_train": 1, "write_logs": True}},
        "data_loader": {"settings": {"collaborator_count": 2, **data}},
    }
    if runner:
        plan["task_runner"] = {"settings": runner}
    return plan


TORCH_HISTOLOGY = Template(
    "torch/histology", ".pt", "acc", _tiny({"batch_size": 4, "image_size": 32}), _histology("data/histology")
)
KERAS_HISTOLOGY = Template(
    "keras/histology",
    ".keras",
    "acc",
    # each collaborator's own folder; the aggregator's initialize uses shard 1 of data/histology
    _tiny({"batch_size": 4, "image_size": 32}),
    _histology("data/histology", "data/mine"),
    data_path=lambda index: "data/mine",
)
TF_CNN_HISTOLOGY = Template(
    "tf_cnn_histology",
    ".keras",
    "acc",
    _tiny({"batch_size": 4, "image_size": 32}),
    _histology("data/histology"),
)
TF_2DUNET = Template(
    "tf_2dunet",
    ".keras",
    "dice_coef",
    _tiny({"batch_size": 4, "image_size": 32}, {"base_filters": 4, "depth": 2}),
    _brats("data/brats"),
    custom_objects_module="src.taskrunner",
)


def certify_template_federation(root: Path, template: Template, fqdn: str = "localhost") -> FederationDirs:
    """The documented flow (pki_flow.certify_federation), with the tiny plan and data in place first."""

    def prepare_aggregator(workspace: Path) -> None:
        _edit_plan(workspace / "plan" / "plan.yaml", template.plan)
        template.write_data(workspace)  # `plan initialize` and `model save` build the data loader (shard 1)

    return certify_federation(
        root,
        list(NAMES),
        fqdn,
        template.name,
        data_paths={name: template.data_path(index) for index, name in enumerate(NAMES, start=1)},
        prepare_aggregator=prepare_aggregator,
        prepare_collaborator=template.write_data,  # data never travels in the archive: each node has its own
    )


def _edit_plan(path: Path, changes: dict[str, Any]) -> None:
    import yaml

    document = yaml.safe_load(path.read_text())
    deep_update(document, changes)
    path.write_text(yaml.safe_dump(document, sort_keys=False))


@pytest.fixture
def quiet_threads(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every `fx` process on one thread (the machine is shared); the harness passes os.environ on."""
    for name, value in {**ONE_THREAD, "KERAS_BACKEND": "tensorflow"}.items():
        monkeypatch.setenv(name, value)
    yield


def _run_one_round(tmp_path: Path, template: Template) -> Path:
    """Certify, run one round to the end, check what the aggregator wrote; return its workspace."""
    certified = certify_template_federation(tmp_path / "certified", template)
    federation = Federation(certified, tmp_path / "run", FAST_RECONNECT)
    try:
        codes = run_until_done(federation, timeout=PROCESS_TIMEOUT)
        assert codes == {"aggregator": 0, "one": 0, "two": 0}, federation.all_logs()
        log = federation.log("aggregator.log")
        assert "round 1/1: 2/2 collaborators done" in log, federation.all_logs()
        for name in NAMES:
            assert not list((federation.collaborators[name] / "save").glob("*.pbuf"))
    finally:
        federation.close()
    _check_outputs(federation.aggregator, template)
    return federation.aggregator


def _check_outputs(aggregator: Path, template: Template) -> None:
    from openfl_cli.tensors.snapshot import load_snapshot

    save = aggregator / "save"
    for name in ("init", "best", "last"):
        assert (save / f"{name}.pbuf").is_file(), f"{name}.pbuf missing"
    init, last = (load_snapshot(save / f"{name}.pbuf") for name in ("init", "last"))
    assert set(last.tensors) >= set(init.tensors)
    assert all(np.isfinite(value).all() for value in last.tensors.values())
    changed = [name for name in init.tensors if not np.array_equal(init.tensors[name], last.tensors[name])]
    assert changed, "the aggregated model after one round equals the initial model"

    records = [json.loads(line) for line in (aggregator / "logs" / "metrics.jsonl").read_text().splitlines()]
    aggregated = {(r["task"], r["metric"]) for r in records if r["node"] == "aggregator"}
    assert {r["round"] for r in records if r["node"] == "aggregator"} == {0}, records  # the one round
    assert ("aggregated_model_validation", template.metric) in aggregated, records
    assert ("train", "loss") in aggregated, records
    assert {r["node"] for r in records} >= {"aggregator", *NAMES}
    for record in records:
        if record["node"] == "aggregator":
            assert np.isfinite(float(record["value"])), record


def _save_native(aggregator: Path, suffix: str) -> Path:
    output = aggregator / "save" / f"model{suffix}"
    command = ["model", "save", "-i", "save/last.pbuf", "-o", f"save/model{suffix}"]
    printed = run_fx(command, cwd=aggregator, timeout=PROCESS_TIMEOUT).stdout
    assert "Saved model to" in printed, printed
    assert output.is_file()
    return output


# --- PyTorch ---------------------------------------------------------------------------------------


@pytest.mark.torch
@pytest.mark.usefixtures("quiet_threads")
def test_torch_histology_federation(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("PIL")
    aggregator = _run_one_round(tmp_path, TORCH_HISTOLOGY)
    native = torch.load(_save_native(aggregator, ".pt"), weights_only=True)
    from openfl_cli.tensors.snapshot import load_snapshot

    last = load_snapshot(aggregator / "save" / "last.pbuf").tensors
    state = native["model_state_dict"]
    assert set(state) == {name for name in last if not name.startswith("__opt__.")}
    for name, value in state.items():
        np.testing.assert_array_equal(value.numpy(), last[name], err_msg=name)


# --- Keras on TensorFlow ---------------------------------------------------------------------------

# Loads the .keras in a fresh process (Keras picks its backend on first import) and checks each weight
# against last.pbuf under the runner's positional names (`<layer index>/<variable name>`).
_LOAD_KERAS = """
import importlib, sys
sys.path.insert(0, ".")
import keras, numpy as np
from openfl_cli.tensors.snapshot import load_snapshot
if sys.argv[2]:
    importlib.import_module(sys.argv[2])
model = keras.saving.load_model(sys.argv[1], safe_mode=True)
last = load_snapshot("save/last.pbuf").tensors
names = {}
for index, layer in enumerate(model.layers):
    short = [v.name for v in layer.weights]
    for position, var in enumerate(layer.weights):
        label = var.name if short.count(var.name) == 1 else f"{position}.{var.name}"
        names[f"{index}/{label}"] = np.asarray(var.numpy())
weights = {k: v for k, v in last.items() if not k.startswith("__opt__.")}
assert set(names) == set(weights), (sorted(names), sorted(weights))
for name, value in names.items():
    np.testing.assert_array_equal(value, weights[name], err_msg=name)
x = np.zeros((1, *model.input_shape[1:]), "float32")
assert np.isfinite(model.predict_on_batch(x)).all()
print("NATIVE MODEL MATCHES", len(names), keras.backend.backend())
"""


def _check_keras_native(aggregator: Path, template: Template) -> None:
    native = _save_native(aggregator, ".keras")
    proc = subprocess.run(
        [sys.executable, "-c", _LOAD_KERAS, str(native), template.custom_objects_module or ""],
        cwd=aggregator,
        env=fx_env(),
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
    )
    assert proc.returncode == 0 and "NATIVE MODEL MATCHES" in proc.stdout, proc.stdout + proc.stderr[-4000:]
    assert proc.stdout.split()[-1] == "tensorflow", proc.stdout


@pytest.mark.keras
@pytest.mark.usefixtures("quiet_threads")
@pytest.mark.parametrize(
    "template", [KERAS_HISTOLOGY, TF_CNN_HISTOLOGY, TF_2DUNET], ids=lambda t: t.name.replace("/", "_")
)
def test_keras_template_federation(tmp_path: Path, template: Template) -> None:
    pytest.importorskip("tensorflow")
    pytest.importorskip("keras")
    pytest.importorskip("nibabel" if template is TF_2DUNET else "PIL")
    assert os.environ["KERAS_BACKEND"] == "tensorflow"
    aggregator = _run_one_round(tmp_path, template)
    _check_keras_native(aggregator, template)
