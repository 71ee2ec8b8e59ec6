"""The PyTorch half of the flow-state wire codec (`openfl_cli.workflow.wire`), here because only
`openfl_cli.runners` imports PyTorch.

A tensor travels as a NumPy array of its values beside the pickle, plus what rebuilds it (dtype, shape,
requires_grad, whether it is a Parameter), so a payload never names PyTorch's rebuild or load functions
and none of them is admitted. PyTorch is imported only once a tensor is in hand (it is loaded already)
or a payload holds a tensor or names a PyTorch global.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

# dtype name (as in `torch.<name>`), shape, requires_grad, is a Parameter
TensorMeta = tuple[str, tuple[int, ...], bool, bool]


def tensor_type() -> type | None:
    """`torch.Tensor` where PyTorch is loaded; None where it is not (then no tensor can exist)."""
    return getattr(sys.modules.get("torch"), "Tensor", None)


def tensor_to_array(tensor: torch.Tensor) -> tuple[np.ndarray, TensorMeta]:
    """The tensor's values as a C-contiguous CPU array (its own memory where it can be) and its meta.
    Raises TypeError for what cannot travel this way: tensor subclasses, sparse, quantized, meta."""
    import torch

    if type(tensor) not in (torch.Tensor, torch.nn.Parameter):
        raise TypeError(f"cannot send a {type(tensor).__qualname__}: only tensors and Parameters travel")
    if tensor.layout != torch.strided or tensor.is_quantized or tensor.is_meta:
        raise TypeError(f"cannot send a {tensor.layout} tensor on {tensor.device}: no plain values to send")
    data = tensor.detach().cpu().resolve_conj().resolve_neg().contiguous()
    try:
        array = data.numpy()
    except TypeError:  # no NumPy dtype (bfloat16, the float8s): its bits, as unsigned ints of its width
        bits = {1: torch.uint8, 2: torch.uint16, 4: torch.uint32, 8: torch.uint64}[data.element_size()]
        array = data.view(bits).numpy()
    dtype_name = str(tensor.dtype).removeprefix("torch.")
    is_parameter = isinstance(tensor, torch.nn.Parameter)
    return array, (dtype_name, tuple(tensor.shape), tensor.requires_grad, is_parameter)


def tensor_from_array(
    array: np.ndarray, dtype_name: str, shape: tuple[int, ...], requires_grad: bool, is_parameter: bool
) -> torch.Tensor:
    """The tensor that `tensor_to_array` took apart, sharing `array`'s memory. Raises ValueError where
    the meta does not fit the array, and ImportError where PyTorch is not installed."""
    import torch

    dtype = vars(torch).get(dtype_name)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"{dtype_name!r} is not a PyTorch dtype")
    try:
        tensor = torch.from_numpy(array)
        if tensor.dtype != dtype:
            if tensor.element_size() != dtype.itemsize:
                raise ValueError(f"an array of {array.dtype} cannot hold the bits of {dtype_name}")
            tensor = tensor.view(dtype)
        if tuple(tensor.shape) != shape:
            raise ValueError(f"an array of shape {array.shape} for a tensor of shape {shape}")
        if is_parameter:
            return torch.nn.Parameter(tensor, requires_grad=requires_grad)
        return tensor.requires_grad_(requires_grad)
    except (TypeError, RuntimeError) as error:  # what PyTorch says of a dtype or flag it cannot take
        raise ValueError(str(error)) from error


def admitted_global(module: str, name: str) -> Any | None:
    """The PyTorch global `module.name` if a payload may name it, else None: dtypes, `torch.Size`,
    `torch.device`, `Parameter`, and the classes of modules, optimizers and schedulers PyTorch defines.
    Nothing is imported but PyTorch itself: a module the payload names must be loaded already."""
    try:
        import torch
    except ImportError:
        return None
    namespace = sys.modules.get(module)
    found = vars(namespace).get(name) if namespace is not None else None  # no module __getattr__ runs
    if module == "torch":
        return found if name in ("Size", "device") or isinstance(found, torch.dtype) else None
    if module == "torch.nn.parameter":
        return found if found is torch.nn.Parameter else None
    if not isinstance(found, type) or found.__module__ != module:
        return None
    if module.startswith("torch.nn.modules.") and issubclass(found, torch.nn.Module):
        return found
    schedules = torch.optim.lr_scheduler
    optim_bases = (torch.optim.Optimizer, schedules.LRScheduler, schedules.ReduceLROnPlateau)
    if module.startswith("torch.optim.") and issubclass(found, optim_bases):
        return found
    return None
