"""The two filters on arrays: ExcludeVars (names or a regex, both directions) and PercentilePrivacy."""

from __future__ import annotations

import numpy as np
import pytest

from openfl_cli.client import FLModel, ParamsType
from openfl_cli.job import ExcludeVars, FilterType, PercentilePrivacy

GLOBAL = {
    "conv.weight": np.full((2, 2), 1.0, dtype=np.float32),
    "conv.bias": np.full(2, 2.0, dtype=np.float32),
    "fc.weight": np.full(3, 3.0, dtype=np.float32),
}


def result(**changes: float) -> FLModel:
    params = {name: array + changes.get(name.replace(".", "_"), 0.0) for name, array in GLOBAL.items()}
    return FLModel(params=params, metrics={"accuracy": 0.5}, current_round=1)


def test_exclude_vars_as_task_data_hides_them_from_the_script() -> None:
    model = FLModel(params={name: array.copy() for name, array in GLOBAL.items()})
    by_list = ExcludeVars(["conv.bias", "absent"], filter_type=FilterType.TASK_DATA)
    assert sorted(by_list.process(model, GLOBAL).params or {}) == ["conv.weight", "fc.weight"]
    by_regex = ExcludeVars(r"^conv\.", filter_type="task_data")
    out = by_regex.process(model, GLOBAL)
    assert sorted(out.params or {}) == ["fc.weight"]
    assert sorted(model.params or {}) == sorted(GLOBAL)  # the input is not changed


def test_exclude_vars_as_task_result_sends_them_back_unchanged() -> None:
    trained = result(conv_weight=0.5, conv_bias=0.5, fc_weight=0.5)
    out = ExcludeVars("bias", filter_type=FilterType.TASK_RESULT).process(trained, GLOBAL)
    assert out.params is not None and out.metrics == {"accuracy": 0.5}
    np.testing.assert_array_equal(out.params["conv.bias"], GLOBAL["conv.bias"])
    np.testing.assert_array_equal(out.params["conv.weight"], GLOBAL["conv.weight"] + 0.5)
    assert out.params["conv.bias"] is not GLOBAL["conv.bias"]
    # a script that left the variable out gets the global value back; a DIFF result gets zeros
    partial = FLModel(params={"fc.weight": GLOBAL["fc.weight"] + 1})
    out = ExcludeVars(["conv.weight"], filter_type=FilterType.TASK_RESULT).process(partial, GLOBAL)
    assert sorted(out.params or {}) == ["conv.weight", "fc.weight"]
    diff = FLModel(
        params={"conv.weight": np.ones((2, 2)), "fc.weight": np.ones(3)}, params_type=ParamsType.DIFF
    )
    out = ExcludeVars(["conv.weight"], filter_type=FilterType.TASK_RESULT).process(diff, GLOBAL)
    assert out.params is not None and not out.params["conv.weight"].any() and out.params["fc.weight"].all()


def test_exclude_vars_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="invalid regular expression"):
        ExcludeVars("(")
    with pytest.raises(ValueError, match="list of names or a regex"):
        ExcludeVars([1, 2])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="filter_type must be"):
        ExcludeVars(["a"], filter_type="both")
    with pytest.raises(RuntimeError, match="no filter_type"):
        ExcludeVars(["a"]).process(result(), GLOBAL)


def test_percentile_privacy_keeps_the_largest_changes_clipped() -> None:
    base = {"w": np.zeros(100, dtype=np.float32), "steps": np.array([5], dtype=np.int64)}
    update = np.arange(1, 101, dtype=np.float64) / 1000.0  # 0.001 .. 0.100
    update[::2] *= -1  # signs must not matter
    model = FLModel(params={"w": (base["w"] + update).astype(np.float32), "steps": np.array([9])})
    out = PercentilePrivacy(percentile=10, gamma=0.05).process(model, base)
    assert out.params is not None
    filtered = out.params["w"].astype(np.float64) - base["w"]
    cutoff = np.percentile(np.abs(update), 10)  # 0.0109: the 10 smallest changes go
    kept = np.abs(update) >= cutoff
    assert kept.sum() == 90 and np.count_nonzero(filtered) == 90
    assert not filtered[~kept].any()
    np.testing.assert_allclose(filtered[kept], np.clip(update[kept], -0.05, 0.05), atol=1e-7)
    assert np.abs(filtered).max() == pytest.approx(0.05)
    assert out.params["w"].dtype == np.float32
    np.testing.assert_array_equal(out.params["steps"], [9])  # integers pass unchanged


def test_percentile_privacy_adds_the_filtered_update_to_the_global_model() -> None:
    global_params = {"w": np.array([10.0, 20.0, 30.0, 40.0])}
    model = FLModel(params={"w": np.array([10.001, 20.5, 29.0, 40.0])})
    out = PercentilePrivacy(percentile=50, gamma=0.1).process(model, global_params)
    # |diffs| = .001 .5 1 0 -> cutoff (median) .2505: -> 0, +.1, -.1, 0
    np.testing.assert_allclose((out.params or {})["w"], [10.0, 20.1, 29.9, 40.0])
    diff = FLModel(params={"w": np.array([0.001, 0.5, -1.0, 0.0])}, params_type="DIFF")
    out = PercentilePrivacy(percentile=50, gamma=0.1).process(diff, global_params)
    np.testing.assert_allclose((out.params or {})["w"], [0.0, 0.1, -0.1, 0.0])
    assert out.params_type == ParamsType.DIFF


def test_percentile_privacy_checks_its_arguments_and_the_global_model() -> None:
    with pytest.raises(ValueError, match="percentile"):
        PercentilePrivacy(percentile=101)
    with pytest.raises(ValueError, match="gamma"):
        PercentilePrivacy(gamma=0)
    with pytest.raises(ValueError, match="no global value"):
        PercentilePrivacy().process(FLModel(params={"new": np.ones(2)}), GLOBAL)
    assert PercentilePrivacy.allowed_types == (FilterType.TASK_RESULT,)
