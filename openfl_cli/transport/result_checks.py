"""What a result must satisfy before the service sees it, on every link (gRPC or in process).

Raise `StreamError` (an INVALID refusal) naming the first problem.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from openfl_cli.tensors.codec import dtype_name
from openfl_cli.transport.limits import Limits
from openfl_cli.transport.messages import StreamError

if TYPE_CHECKING:
    import numpy as np


def check_result_fields(
    round_number: int, task_name: str, metric_names: Iterable[str], limits: Limits
) -> None:
    if round_number < 0:
        raise StreamError(f"negative round number {round_number}")
    if not task_name or len(task_name) > limits.max_name_chars:
        raise StreamError("the result names no task (or a too long one)")
    names = list(metric_names)
    if len(names) > limits.max_metrics:
        raise StreamError(f"more than {limits.max_metrics} metrics")
    if any(not name or len(name) > limits.max_name_chars for name in names):
        raise StreamError(f"metric names must have 1..{limits.max_name_chars} characters")


def check_tensor_matches(
    name: str, dtype: str, shape: tuple[int, ...], model: Mapping[str, np.ndarray]
) -> None:
    """A result may only carry tensors of the model that was sent, with the same dtype and shape: this
    bounds its size by the model's before anything is allocated."""
    reference = model.get(name)
    if reference is None:
        raise StreamError(f"unknown tensor {name!r}: not in the model of this round")
    expected_dtype, expected_shape = dtype_name(reference.dtype), tuple(reference.shape)
    if (dtype, shape) != (expected_dtype, expected_shape):
        raise StreamError(
            f"tensor {name!r} is {dtype} {list(shape)}, the model has {expected_dtype} {list(expected_shape)}"
        )
