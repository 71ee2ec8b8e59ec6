"""PyTorch <-> NumPy for the training-script Client API (`openfl_cli.client`), here because only
`openfl_cli.runners` imports PyTorch; the client imports this module only for `framework: pytorch`.

The task runner always holds `dict[str, numpy.ndarray]`; a PyTorch script gets tensors it can hand to
`load_state_dict` and sends back a state_dict (or any mapping of tensors).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch


def to_torch(params: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """CPU tensors over the arrays' memory (the arrays are the script's own copies)."""
    return {
        name: torch.from_numpy(array if array.flags.writeable else array.copy())
        for name, array in params.items()
    }


def from_torch(params: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Arrays of the tensors' values (moved to the CPU); NumPy arrays pass through. bfloat16, which
    NumPy lacks, travels as float32 (the runner casts to the global model's dtype anyway)."""
    arrays: dict[str, np.ndarray] = {}
    for name, value in params.items():
        if isinstance(value, torch.Tensor):
            tensor = value.detach()
            if tensor.dtype == torch.bfloat16:
                tensor = tensor.float()
            arrays[name] = tensor.cpu().resolve_conj().resolve_neg().contiguous().numpy()
        else:
            arrays[name] = np.asarray(value)
    return arrays


def use_device(device: str) -> None:
    """Make `device` ("cuda:N") the current CUDA device of the calling thread."""
    import torch

    torch.cuda.set_device(torch.device(device))
