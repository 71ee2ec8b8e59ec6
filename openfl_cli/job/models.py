"""Initial models: `PTModel(net)` and `TFModel(keras_model)` put the model's weights into the job as
`save/init.pbuf`, the aggregator's round-0 model.

Names are the ones the project's task runners use, so a snapshot loads into them: a PyTorch
`state_dict`'s keys (buffers included); for Keras the positional `<layer index>/<variable name>` of
`openfl_cli.runners.keras`. Neither framework is imported here unless the model is one of its
objects (it is then already imported).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import numpy as np

from openfl_cli.errors import UsageError

if TYPE_CHECKING:
    from openfl_cli.job.job import FedJob, JobCtx


def is_torch_module(obj: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def is_keras_model(obj: Any) -> bool:
    keras = sys.modules.get("keras")
    return keras is not None and isinstance(obj, keras.Model)


def torch_arrays(module: Any) -> dict[str, np.ndarray]:
    """A torch module's `state_dict` as NumPy arrays (copies on the CPU; bfloat16 as float32)."""
    if not is_torch_module(module):
        raise UsageError(f"PTModel: expected a torch.nn.Module, got {type(module).__name__}")
    arrays: dict[str, np.ndarray] = {}
    for name, tensor in module.state_dict().items():
        value = tensor.detach()
        if str(value.dtype) == "torch.bfloat16":  # NumPy has no bfloat16 (the torch runner does the same)
            value = value.float()
        arrays[name] = value.cpu().numpy().copy()
    return arrays


def keras_arrays(model: Any) -> dict[str, np.ndarray]:
    """A Keras model's weights under the names the Keras task runner gives them."""
    if not is_keras_model(model):
        raise UsageError(f"TFModel: expected a keras.Model, got {type(model).__name__}")
    if not model.built:
        raise UsageError(
            "TFModel: the Keras model has no weights yet; build it first (model.build(input_shape),"
            " or give its first layer an input shape)"
        )
    from openfl_cli.runners.keras import _numpy, _weight_names

    return {name: _numpy(variable) for name, variable in _weight_names(model).items()}


class PTModel:
    """The initial weights of a PyTorch model (sent to the server)."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def add_to_fed_job(self, job: FedJob, ctx: JobCtx) -> str:
        """Record the weights as the job's initial model; return its path in the workspace."""
        return job.add_initial_model(torch_arrays(self.model), ctx)


class TFModel:
    """The initial weights of a Keras (TensorFlow, JAX or PyTorch backend) model (sent to the server)."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def add_to_fed_job(self, job: FedJob, ctx: JobCtx) -> str:
        return job.add_initial_model(keras_arrays(self.model), ctx)


def wrap_model(model: Any) -> PTModel | TFModel:
    """`model` in the wrapper of its framework (a wrapper is returned as it is)."""
    if isinstance(model, (PTModel, TFModel)):
        return model
    if is_torch_module(model):
        return PTModel(model)
    if is_keras_model(model):
        return TFModel(model)
    raise UsageError(
        f"initial_model: expected a torch.nn.Module or a keras.Model (or PTModel/TFModel), got"
        f" {type(model).__name__}"
    )
