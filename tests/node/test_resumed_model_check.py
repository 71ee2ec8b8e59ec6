"""A state database whose model does not fit the plan's initial model is refused at start."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from openfl_cli.errors import UsageError
from openfl_cli.node.aggregator import _check_resumed_model

SPEC = SimpleNamespace(
    aggregator=SimpleNamespace(
        outputs=SimpleNamespace(persistent_db="local_state/tensor.db", init_path="save/init.pbuf")
    )
)
INITIAL = {"W": np.zeros((64, 10), np.float32), "b": np.zeros(10, np.float32)}


def test_a_resumed_model_of_the_same_kind_passes_with_optimizer_state() -> None:
    resumed = {**INITIAL, "__opt__.adam.m": np.zeros(1, np.float32)}
    _check_resumed_model(SPEC, INITIAL, {name: value + 1 for name, value in resumed.items()})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("resumed", "problem"),
    [
        ({"W": np.zeros((64, 10), np.float32)}, "1 tensor(s) missing ('b')"),
        (
            {**INITIAL, "W": np.zeros((32, 10), np.float32)},
            "'W' has shape (32, 10) where (64, 10) is expected",
        ),
        ({**INITIAL, "extra.weight": np.zeros(3, np.float32)}, "1 tensor(s) missing ('extra.weight')"),
    ],
    ids=["missing", "reshaped", "another-model"],
)
def test_a_resumed_model_that_does_not_fit_is_refused_in_one_line(
    resumed: dict[str, np.ndarray], problem: str
) -> None:
    with pytest.raises(UsageError) as refused:
        _check_resumed_model(SPEC, INITIAL, resumed)  # type: ignore[arg-type]
    message = str(refused.value)
    assert message.startswith("local_state/tensor.db: its saved model does not fit save/init.pbuf (")
    assert problem in message and "\n" not in message
