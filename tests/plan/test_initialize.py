"""`fx plan initialize`: address and port resolution, the plan written back, the initial model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from openfl_cli.errors import PlanError, UsageError
from openfl_cli.plan import Plan
from openfl_cli.plan.initialize import PORT_RANGE, initialize, stable_port
from openfl_cli.tensors.snapshot import load_snapshot, save_snapshot

from .conftest import PLAN

COMMENTED = PLAN.replace(
    "network:\n  defaults: plan/defaults/network.yaml\n",
    "network:\n  defaults: plan/defaults/network.yaml\n  settings:\n"
    "    agg_addr: auto   # filled in by initialize\n    agg_port: auto\n",
)


def test_stable_port():
    port = stable_port("a" * 96)
    assert PORT_RANGE[0] <= port <= PORT_RANGE[1]
    assert port == stable_port("a" * 96)
    assert len({stable_port(str(i)) for i in range(50)}) > 40


def test_initialize_with_address_flag(make_workspace, in_workspace):
    root = in_workspace(make_workspace(COMMENTED))
    result = initialize(agg_addr="agg.example.org")
    plan = Plan.load()
    assert plan.network_settings.agg_addr == "agg.example.org"
    assert plan.network_settings.agg_port == result.agg_port
    assert PORT_RANGE[0] <= result.agg_port <= PORT_RANGE[1]
    assert result.plan_hash == plan.hash
    text = (root / "plan/plan.yaml").read_text()
    assert "agg_addr: agg.example.org   # filled in by initialize" in text  # edited in place
    assert "# filled in" in text
    snapshot = load_snapshot(root / "save/init.pbuf")
    assert snapshot.round_number == 0
    assert set(snapshot.tensors) == {"dense/w", "dense/b"}
    np.testing.assert_array_equal(snapshot.tensors["dense/w"], np.arange(6, dtype=np.float32).reshape(2, 3))
    assert result.init_state_path == root.resolve() / "save/init.pbuf"


def test_same_plan_same_port(make_workspace, in_workspace):
    ports = []
    for _ in range(2):
        in_workspace(make_workspace(COMMENTED))
        ports.append(initialize(agg_addr="h.example").agg_port)
    assert ports[0] == ports[1]


def test_address_from_fqdn_env_then_machine(make_workspace, in_workspace, monkeypatch):
    in_workspace(make_workspace())
    monkeypatch.setenv("FQDN", "10.1.2.3")
    assert initialize().agg_addr == "10.1.2.3"
    # the plan had no settings for these: they were added to the file
    with open("plan/plan.yaml") as handle:
        assert yaml.safe_load(handle)["network"]["settings"]["agg_addr"] == "10.1.2.3"

    in_workspace(make_workspace())
    monkeypatch.delenv("FQDN")
    monkeypatch.setattr("socket.getfqdn", lambda *args: "machine.local")
    assert initialize().agg_addr == "machine.local"


def test_resolved_values_are_kept(make_workspace, in_workspace):
    explicit = PLAN.replace(
        "network:\n  defaults: plan/defaults/network.yaml\n",
        "network:\n  defaults: plan/defaults/network.yaml\n"
        "  settings: {agg_addr: fixed.host, agg_port: 50123}\n",
    )
    root = in_workspace(make_workspace(explicit))
    before = (root / "plan/plan.yaml").read_text()
    result = initialize()
    assert (result.agg_addr, result.agg_port) == ("fixed.host", 50123)
    assert (root / "plan/plan.yaml").read_text() == before
    assert initialize(agg_addr="other.host").agg_addr == "other.host"  # -a overrides


def test_initialize_without_data_file(make_workspace, in_workspace):
    in_workspace(make_workspace(data=None, cols=None))
    assert initialize(agg_addr="h").tensor_count == 2


def test_bad_address(make_workspace, in_workspace):
    in_workspace(make_workspace())
    with pytest.raises(UsageError, match="invalid FQDN"):
        initialize(agg_addr="bad/host")


def test_broken_runner_leaves_plan_untouched(make_workspace, in_workspace):
    root = in_workspace(make_workspace(COMMENTED.replace("settings: {}\n", "settings: {bogus: 1}\n", 1)))
    before = (root / "plan/plan.yaml").read_text()
    with pytest.raises(PlanError, match="bogus"):
        initialize(agg_addr="h")
    assert (root / "plan/plan.yaml").read_text() == before
    assert not (root / "save/init.pbuf").exists()


def test_input_weights(make_workspace, in_workspace, tmp_path):
    root = in_workspace(make_workspace())
    good = {"dense/w": np.ones((2, 3), np.float32), "dense/b": np.full(3, 2, np.float32)}
    save_snapshot(tmp_path / "good.pbuf", good)
    result = initialize(agg_addr="h", input_weights=tmp_path / "good.pbuf")
    assert result.input_weights == tmp_path / "good.pbuf"
    np.testing.assert_array_equal(load_snapshot(root / "save/init.pbuf").tensors["dense/b"], good["dense/b"])

    save_snapshot(tmp_path / "shape.pbuf", {**good, "dense/w": np.ones((3, 2), np.float32)})
    with pytest.raises(UsageError, match=r"dense/w: float32\[3, 2\], the model has float32\[2, 3\]"):
        initialize(agg_addr="h", input_weights=tmp_path / "shape.pbuf")
    save_snapshot(tmp_path / "dtype.pbuf", {**good, "dense/b": np.ones(3, np.float64)})
    with pytest.raises(UsageError, match="dense/b: float64"):
        initialize(agg_addr="h", input_weights=tmp_path / "dtype.pbuf")
    save_snapshot(tmp_path / "names.pbuf", {"dense/w": good["dense/w"], "extra": good["dense/b"]})
    with pytest.raises(UsageError, match="missing dense/b; unexpected extra"):
        initialize(agg_addr="h", input_weights=tmp_path / "names.pbuf")
    with pytest.raises(UsageError, match="file not found"):
        initialize(agg_addr="h", input_weights=tmp_path / "none.pbuf")


def test_cli_commands(make_workspace, in_workspace):
    from openfl_cli.cli.plan import initialize as initialize_cmd
    from openfl_cli.cli.plan import print_, validate

    in_workspace(make_workspace())
    runner = CliRunner()
    printed = runner.invoke(print_, [])
    assert printed.exit_code == 0, printed.output
    assert yaml.safe_load(printed.output)["aggregator"]["settings"]["rounds_to_train"] == 3
    checked = runner.invoke(validate, [])
    assert checked.exit_code == 0, checked.output
    assert checked.output == f"plan OK: {Plan.load().hash}\n"
    done = runner.invoke(initialize_cmd, ["-a", "agg.example"])
    assert done.exit_code == 0, done.output
    assert "agg.example:" in done.output and "2 tensors written to" in done.output
    bad = runner.invoke(validate, ["-p", "plan/missing.yaml"])
    assert isinstance(bad.exception, PlanError)


# A loader that needs its data on disk and a runner whose model depends on the input shape, as the
# image templates have: the aggregator's machine usually holds none of that data.
DATA_BOUND_LOADER = """
from pathlib import Path

from openfl_cli.data.base import DataLoader


class FolderLoader(DataLoader):
    def __init__(self, data_path, batch_size, collaborator_count=None, **settings):
        super().__init__(data_path, batch_size, collaborator_count, **settings)
        self.images = (Path("data") / str(data_path) / "images.txt").read_text().split()

    def get_train_loader(self, **kwargs):
        return [self.images]

    def get_valid_loader(self, **kwargs):
        return [self.images]

    def get_train_data_size(self):
        return len(self.images)

    def get_valid_data_size(self):
        return len(self.images)

    def get_feature_shape(self):
        return (1, 4, 4)
"""
SHAPED_RUNNER = """
import numpy as np

from src.taskrunner import TinyRunner


class ShapedRunner(TinyRunner):
    def __init__(self, data_loader=None):
        super().__init__(data_loader)
        features = int(np.prod(data_loader.get_feature_shape()))
        self.weights = {"dense/w": np.zeros((features, 2), np.float32)}
"""


def data_bound_workspace(make_workspace) -> Path:
    plan = PLAN.replace("src.dataloader.TinyLoader", "src.folderloader.FolderLoader").replace(
        "src.taskrunner.TinyRunner", "src.shaped.ShapedRunner"
    )
    return make_workspace(
        plan, files={"src/folderloader.py": DATA_BOUND_LOADER, "src/shaped.py": SHAPED_RUNNER}
    )


def test_input_shape_builds_the_model_without_any_data(make_workspace, in_workspace):
    from openfl_cli.cli.plan import initialize as initialize_cmd

    root = in_workspace(data_bound_workspace(make_workspace))
    with pytest.raises(
        UsageError, match=r"images.txt.*; without data on this machine, .*--input-shape \[C,H,W\]$"
    ):
        initialize(agg_addr="h")
    assert not (root / "save/init.pbuf").exists()

    done = CliRunner().invoke(initialize_cmd, ["-a", "h", "--input-shape", "[1, 8, 8]"])
    assert done.exit_code == 0, done.output
    assert load_snapshot(root / "save/init.pbuf").tensors["dense/w"].shape == (64, 2)


@pytest.mark.parametrize("text", ["", "[]", "1,x", "[1,0,3]", "-2"])
def test_a_bad_input_shape_is_a_usage_error(make_workspace, in_workspace, text: str):
    from openfl_cli.cli.plan import initialize as initialize_cmd

    in_workspace(data_bound_workspace(make_workspace))
    refused = CliRunner().invoke(initialize_cmd, ["-a", "h", "--input-shape", text])
    assert isinstance(refused.exception, UsageError)  # exit code 2 from fx
    assert f"--input-shape {text!r}: expected positive sizes" in str(refused.exception)
