"""The model update type: weights and optimizer state apart, the flat on-disk naming in one place."""

from __future__ import annotations

import numpy as np
import pytest

from openfl_cli.federation.update import OPT_PREFIX, ModelUpdate, is_optimizer_tensor, split_tensors


def test_flat_tensors_split_and_join_back() -> None:
    flat = {"w": np.ones(3, np.float32), f"{OPT_PREFIX}w.exp_avg": np.zeros(3, np.float32)}
    update = ModelUpdate.from_tensors(flat, {"loss": 1}, 5, round_number=2)
    assert set(update.weights) == {"w"} and set(update.optimizer_state) == {"w.exp_avg"}
    assert update.round_number == 2 and update.metrics == {"loss": 1.0}
    assert update.tensors.keys() == flat.keys()
    assert update.flat(with_optimizer=False).keys() == {"w"}
    assert update.has_tensors and not ModelUpdate({}, 3).has_tensors
    assert is_optimizer_tensor(f"{OPT_PREFIX}x") and not is_optimizer_tensor("x")
    assert split_tensors({}) == ({}, {})


def test_a_delta_is_taken_against_the_flat_global_model() -> None:
    update = ModelUpdate({}, 4, {"w": np.array([3.0, 5.0], np.float32)}, {"w": np.array([1.0], np.float32)})
    base = {"w": np.array([1.0, 1.0], np.float32), f"{OPT_PREFIX}w": np.array([0.5], np.float32)}
    delta = update.delta_from(base)
    assert delta.is_delta and delta.delta_from(base) is delta
    np.testing.assert_array_equal(delta.weights["w"], [2.0, 4.0])
    np.testing.assert_array_equal(delta.optimizer_state["w"], [0.5])
    assert delta.weights["w"].dtype == np.float32
    with pytest.raises(ValueError, match="'v': cannot send a delta"):
        ModelUpdate({}, 1, {"v": np.zeros(1)}).delta_from(base)
    with pytest.raises(ValueError, match="boolean"):
        ModelUpdate({}, 1, {"w": np.zeros(2, bool)}).delta_from(base)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sample_count": -1}, "sample_count must be >= 0"),
        ({"sample_count": 2.5}, "sample_count must be an integer"),
        ({"sample_count": True}, "sample_count must be an integer"),
        ({"weights": {f"{OPT_PREFIX}w": np.zeros(1)}}, "may not start with"),
    ],
)
def test_bad_updates_are_refused(kwargs: dict, message: str) -> None:
    arguments = {"metrics": {}, "sample_count": 1, **kwargs}
    with pytest.raises(ValueError, match=message):
        ModelUpdate(**arguments)
