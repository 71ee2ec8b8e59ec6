"""FLModel: validated when made, with clear errors naming the field."""

from __future__ import annotations

import math

import numpy as np
import pytest

from openfl_cli.client import FLModel, ParamsType


def test_defaults_and_params_type() -> None:
    assert FLModel().params_type is None
    model = FLModel(params={"w": np.zeros(2)})
    assert model.params_type is ParamsType.FULL
    assert FLModel(params={}, params_type="DIFF").params_type is ParamsType.DIFF
    assert FLModel(params={}, params_type=ParamsType.DIFF).params_type == "DIFF"  # a str enum
    assert FLModel().meta == {} and FLModel().meta is not FLModel().meta


def test_metrics_become_floats() -> None:
    model = FLModel(metrics={"acc": 1, "loss": np.float32(0.5)})
    assert model.metrics == {"acc": 1.0, "loss": 0.5}
    assert all(type(value) is float for value in model.metrics.values())


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"params": [1, 2]}, "params"),
        ({"params": {1: np.zeros(1)}}, "params"),
        ({"params": {}, "params_type": "HALF"}, "params_type"),
        ({"optimizer_params": "x"}, "optimizer_params"),
        ({"metrics": {"acc": math.nan}}, r"metrics\['acc'\]"),
        ({"metrics": {"acc": math.inf}}, r"metrics\['acc'\]"),
        ({"metrics": {"acc": "high"}}, r"metrics\['acc'\]"),
        ({"metrics": {"acc": True}}, r"metrics\['acc'\]"),
        ({"metrics": {3: 1.0}}, "metrics"),
        ({"metrics": [1.0]}, "metrics"),
        ({"current_round": -1}, "current_round"),
        ({"current_round": 1.5}, "current_round"),
        ({"total_rounds": True}, "total_rounds"),
        ({"meta": None}, "meta"),
        ({"meta": {1: "x"}}, "meta"),
    ],
)
def test_bad_fields_are_refused_naming_them(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=rf"FLModel\.{field}"):
        FLModel(**kwargs)


def test_numpy_integers_are_rounds() -> None:
    assert FLModel(current_round=np.int64(3)).current_round == 3
