from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from openfl_cli.errors import UsageError
from openfl_cli.runners.base import OPT_PREFIX
from openfl_cli.workspace.model import check_compatible, get_model, save_model

snapshot = pytest.importorskip("openfl_cli.tensors.snapshot")
pytest.importorskip("openfl_cli.plan")

EXPECTED = {"W": np.zeros((64, 10), np.float32), "b": np.zeros(10, np.float32)}


def _configs(workspace: Path) -> dict[str, Path]:
    plan = workspace / "plan"
    return {
        "plan_config": plan / "plan.yaml",
        "cols_config": plan / "cols.yaml",
        "data_config": plan / "data.yaml",
    }


def test_compatible_snapshot_passes_and_ignores_optimizer_state() -> None:
    found = {**EXPECTED, f"{OPT_PREFIX}W": np.zeros((64, 10), np.float32)}
    check_compatible(EXPECTED, found, "s.pbuf")


@pytest.mark.parametrize(
    ("found", "message"),
    [
        ({"W": EXPECTED["W"]}, r"missing tensors 'b'"),
        ({**EXPECTED, "extra": np.zeros(3)}, r"unexpected tensors 'extra'"),
        (
            {"W": np.zeros((10, 64)), "b": EXPECTED["b"]},
            r"tensor 'W' has shape \(10, 64\), the model expects",
        ),
    ],
)
def test_mismatch_is_a_clear_error(found: dict[str, np.ndarray], message: str) -> None:
    with pytest.raises(UsageError, match=rf"snapshot s.pbuf does not match the plan's model: {message}"):
        check_compatible(EXPECTED, found, "s.pbuf")


def test_get_model_loads_the_snapshot(workspace: Path) -> None:
    weights = {"W": np.full((64, 10), 0.5, np.float32), "b": np.arange(10, dtype=np.float32)}
    snapshot.save_snapshot(workspace / "save" / "last.pbuf", weights, round_number=3)
    runner = get_model(**_configs(workspace), model_protobuf_path=workspace / "save" / "last.pbuf")
    for name, value in weights.items():
        assert np.array_equal(runner.get_tensor_dict()[name], value)


def test_get_model_refuses_a_foreign_snapshot(workspace: Path) -> None:
    snapshot.save_snapshot(workspace / "save" / "other.pbuf", {"conv1.weight": np.zeros((3, 3), np.float32)})
    with pytest.raises(UsageError, match=r"missing tensors 'W', 'b'; unexpected tensors 'conv1\.weight'"):
        get_model(**_configs(workspace), model_protobuf_path=workspace / "save" / "other.pbuf")


def test_get_model_missing_snapshot(workspace: Path) -> None:
    with pytest.raises(UsageError, match=r"snapshot .*nope\.pbuf not found"):
        get_model(**_configs(workspace), model_protobuf_path=workspace / "save" / "nope.pbuf")


def test_save_model_writes_the_native_file(workspace: Path) -> None:
    weights = {"W": np.full((64, 10), 0.25, np.float32), "b": np.ones(10, np.float32)}
    snapshot.save_snapshot(workspace / "save" / "best.pbuf", weights)
    written = save_model(workspace / "save" / "best.pbuf", workspace / "model.npz", **_configs(workspace))
    assert written == workspace / "model.npz"
    with np.load(written, allow_pickle=False) as saved:
        assert np.array_equal(saved["W"], weights["W"]) and np.array_equal(saved["b"], weights["b"])
