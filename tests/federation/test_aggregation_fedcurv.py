"""FedCurv's server side: weights averaged by sample count, Fisher-derived tensors summed."""

from __future__ import annotations

import numpy as np
import pytest

from openfl_cli.federation.aggregation import FedCurvWeightedAverage, WeightedAverage

GLOBAL = {
    "fc.weight": np.zeros((2, 3), np.float32),
    "fc.weight_u": np.zeros((2, 3), np.float32),  # diag(F)
    "fc.weight_v": np.zeros((2, 3), np.float32),  # diag(F) * theta
    "fc.weight_w": np.zeros((2, 3), np.float32),  # diag(F) * theta^2
    "steps": np.array(0, np.int64),
}


def _site(theta: float, fisher: float) -> dict[str, np.ndarray]:
    shape = (2, 3)
    return {
        "fc.weight": np.full(shape, theta, np.float32),
        "fc.weight_u": np.full(shape, fisher, np.float32),
        "fc.weight_v": np.full(shape, fisher * theta, np.float32),
        "fc.weight_w": np.full(shape, fisher * theta**2, np.float32),
        "steps": np.array(7, np.int64),
    }


def _round(function, results, weights, global_tensors=GLOBAL, *, is_delta=False, remove=()):
    function.begin_round(0, global_tensors)
    for name, tensors in results.items():
        for tensor, value in tensors.items():
            function.add(name, tensor, value, weights[name], is_delta=is_delta)
        if name in remove:
            function.remove(name)
        else:
            function.commit(name)
    return function.end_round()


def test_weights_are_averaged_and_fisher_tensors_summed():
    results = {"a": _site(1.0, 2.0), "b": _site(3.0, 4.0)}
    out = _round(FedCurvWeightedAverage(), results, {"a": 1, "b": 3})
    np.testing.assert_allclose(out["fc.weight"], (1 * 1.0 + 3 * 3.0) / 4)  # sample-weighted
    np.testing.assert_allclose(out["fc.weight_u"], 2.0 + 4.0)  # unweighted sums
    np.testing.assert_allclose(out["fc.weight_v"], 2.0 * 1.0 + 4.0 * 3.0)
    np.testing.assert_allclose(out["fc.weight_w"], 2.0 + 4.0 * 9.0)
    assert out["steps"] == 7  # non-float tensors as everywhere: the agreed value
    assert all(out[name].dtype == GLOBAL[name].dtype for name in GLOBAL)


def test_each_collaborator_gets_what_its_penalty_needs():
    # the penalty of site t uses sum over the others of u_j and v_j: the sums minus its own
    sites = {"a": _site(1.0, 2.0), "b": _site(3.0, 4.0), "c": _site(-1.0, 0.5)}
    out = _round(FedCurvWeightedAverage(), sites, {"a": 5, "b": 1, "c": 2})
    for name, site in sites.items():
        others = [other for key, other in sites.items() if key != name]
        np.testing.assert_allclose(
            out["fc.weight_u"] - site["fc.weight_u"], sum(o["fc.weight_u"] for o in others), rtol=1e-6
        )
        np.testing.assert_allclose(
            out["fc.weight_v"] - site["fc.weight_v"], sum(o["fc.weight_v"] for o in others), rtol=1e-6
        )


def test_ordinary_tensors_match_weighted_average():
    results = {"a": _site(1.0, 2.0), "b": _site(3.0, 4.0)}
    weights = {"a": 2, "b": 5}
    fedcurv = _round(FedCurvWeightedAverage(), results, weights)
    average = _round(WeightedAverage(), results, weights)
    np.testing.assert_array_equal(fedcurv["fc.weight"], average["fc.weight"])


def test_a_removed_or_zero_weight_result_is_not_summed():
    results = {"a": _site(1.0, 2.0), "b": _site(3.0, 4.0), "c": _site(9.0, 9.0)}
    out = _round(FedCurvWeightedAverage(), results, {"a": 1, "b": 0, "c": 1}, remove=("c",))
    np.testing.assert_allclose(out["fc.weight_u"], 2.0)
    np.testing.assert_allclose(out["fc.weight"], 1.0)


def test_deltas_are_summed_as_full_values():
    previous = {name: value.copy() for name, value in GLOBAL.items()}
    previous["fc.weight_u"] = np.full((2, 3), 10.0, np.float32)  # last round's sum, sent out
    site = _site(1.0, 2.0)
    delta = {name: np.asarray(site[name] - previous[name], previous[name].dtype) for name in site}
    out = _round(FedCurvWeightedAverage(), {"a": delta}, {"a": 1}, previous, is_delta=True)
    np.testing.assert_allclose(out["fc.weight_u"], 2.0)


def test_nobody_keeps_the_global_value():
    function = FedCurvWeightedAverage()
    function.begin_round(0, GLOBAL)
    out = function.end_round()
    assert all(out[name] is GLOBAL[name] for name in GLOBAL)


def test_the_suffixes_are_a_setting():
    function = FedCurvWeightedAverage(fisher_suffixes=["_fisher"])
    assert function.is_fisher("x_fisher") and not function.is_fisher("x_u")
    with pytest.raises(ValueError, match="fisher_suffixes"):
        FedCurvWeightedAverage(fisher_suffixes="_u")
