"""A PyTorch script gets a state_dict of tensors and sends tensors back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from openfl_cli.client.runner import ScriptDataLoader, ScriptTaskRunner
from tests.client.helpers import write_script

TORCH_SCRIPT = """
import torch

import openfl_cli.client as flare

net = torch.nn.Linear(3, 2)
flare.init()
while flare.is_running():
    model = flare.receive()
    if model is None:
        break
    assert all(isinstance(value, torch.Tensor) for value in model.params.values())
    net.load_state_dict(model.params)
    with torch.no_grad():
        net.weight += 1.0
        net.bias -= 0.5
    state = net.state_dict()
    assert all(isinstance(value, torch.Tensor) for value in state.values())
    flare.send(flare.FLModel(params=state, metrics={"norm": float(net.weight.detach().norm())}))
"""


@pytest.mark.torch
@pytest.mark.parametrize("external", [False, True], ids=["in-process", "ex-process"])
def test_a_pytorch_script_trades_tensors(tmp_path: Path, external: bool) -> None:
    pytest.importorskip("torch")
    write_script(tmp_path, source=TORCH_SCRIPT)
    runner = ScriptTaskRunner(
        ScriptDataLoader("site-1"),
        script="train.py",
        framework="pytorch",
        launch_external_process=external,
        workspace=tmp_path,
    )
    base = {"weight": np.zeros((2, 3), dtype=np.float32), "bias": np.ones(2, dtype=np.float32)}
    try:
        runner.rebuild_model(base)
        update = runner.train_task(0)
        np.testing.assert_allclose(update.weights["weight"], np.ones((2, 3)))
        np.testing.assert_allclose(update.weights["bias"], np.full(2, 0.5))
        assert all(isinstance(value, np.ndarray) for value in update.weights.values())
        assert update.weights["weight"].dtype == np.float32
        assert update.metrics["norm"] == pytest.approx(np.sqrt(6))
    finally:
        runner.close()
