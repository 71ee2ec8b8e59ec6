"""Pure FedAvgM / FedAdam steps: the bits and the state of the streaming classes, round after round."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np
import pytest

from openfl_cli.federation.aggregation import (
    AggregationFunction,
    FedAdam,
    FedAvgM,
    fedadam_step,
    fedavgm_step,
    weighted_average_models,
)

Model = dict[str, np.ndarray]
SETTINGS = {
    FedAvgM: [
        {},
        {"server_learning_rate": 0.5, "momentum": 0.0},
        {"server_learning_rate": 2.0, "momentum": 0.5},
    ],
    FedAdam: [{}, {"server_learning_rate": 0.1, "beta1": 0.0, "beta2": 0.5, "tau": 1e-6}],
}
STEPS: dict[type, Callable[..., tuple[Model, Model]]] = {FedAvgM: fedavgm_step, FedAdam: fedadam_step}


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def assert_same(a: Model, b: Model) -> None:
    assert sorted(a) == sorted(b)
    for name in a:
        assert same_bits(a[name], b[name]), name


def initial_model(rng: np.random.Generator) -> Model:
    return {
        "h": rng.standard_normal((3, 2)).astype(np.float16),
        "w": rng.standard_normal((4, 5)).astype(np.float32),
        "d": rng.standard_normal(6),
        "s": np.asarray(rng.standard_normal(), dtype=np.float32),
        "steps": np.array(3, np.int64),
        "__opt__.m": rng.standard_normal(4).astype(np.float32),
    }


def round_results(rng: np.random.Generator, model: Model, round_number: int) -> list[tuple[Model, float]]:
    results = []
    for index in range(3):
        trained = {
            name: np.asarray(value + rng.standard_normal(value.shape), dtype=value.dtype)
            for name, value in model.items()
        }
        trained["steps"] = np.asarray(model["steps"] + 1)
        if round_number == 2:
            del trained["d"]  # nobody sends "d" this round: it is kept and its state does not advance
        results.append((trained, float(index + 1)))
    return results


def stream_round(
    fn: AggregationFunction, model: Model, results: list[tuple[Model, float]], round_number: int
) -> Model:
    fn.begin_round(round_number, model)
    for index, (trained, weight) in enumerate(results):
        for name, array in trained.items():
            fn.add(f"c{index}", name, array, weight)
        fn.commit(f"c{index}")
    return fn.end_round()


def pure_aggregate(model: Model, results: list[tuple[Model, float]]) -> Model:
    """The weighted average of the tensors every result sent (each round's results send the same ones)."""
    names = set(results[0][0])
    subset = [({name: trained[name] for name in names}, weight) for trained, weight in results]
    return weighted_average_models(subset, global_model=model)


@pytest.mark.parametrize(
    ("cls", "settings"), [(cls, settings) for cls, options in SETTINGS.items() for settings in options]
)
def test_pure_steps_give_the_bits_and_state_of_the_classes_round_after_round(
    cls: type, settings: dict
) -> None:
    rng = np.random.default_rng(11)
    streaming, step = cls(**settings), STEPS[cls]
    model_a = model_b = initial_model(rng)
    state: dict[str, np.ndarray] | None = None
    for round_number in range(5):
        results = round_results(rng, model_a, round_number)
        model_a = stream_round(streaming, model_a, results, round_number)
        model_b, state = step(model_b, pure_aggregate(model_b, results), state, **settings)
        assert_same(model_a, model_b)
        assert_same(streaming.state_dict(), state)
        assert all(isinstance(value, np.ndarray) for value in model_a.values())  # 0-d: arrays, not scalars
    assert state is not None
    assert not any(key.endswith("/steps") or "__opt__" in key for key in state)  # not stepped, no state


@pytest.mark.parametrize("cls", [FedAvgM, FedAdam])
def test_state_moves_between_the_classes_and_the_pure_steps(cls: type) -> None:
    rng = np.random.default_rng(5)
    model = initial_model(rng)
    first, second, third = (round_results(rng, model, 0) for _ in range(3))
    streaming = cls()
    after_first = stream_round(streaming, model, first, 1)
    # class -> pure
    pure_model, pure_state = STEPS[cls](
        after_first, pure_aggregate(after_first, second), streaming.state_dict()
    )
    # pure -> class
    restored = cls()
    restored.load_state_dict(pure_state)
    expected = stream_round(streaming, after_first, second, 2)
    assert_same(expected, pure_model)
    assert_same(stream_round(restored, pure_model, third, 3), stream_round(streaming, expected, third, 3))


def test_fedavgm_step_matches_hand_computation() -> None:
    w, velocity = np.array([1.0, 2.0]), np.zeros(2)
    model: Model = {"w": w}
    state: dict[str, np.ndarray] | None = None
    for average in (np.array([0.0, 1.0]), np.array([0.5, 0.5])):
        model, state = fedavgm_step(model, {"w": average}, state, server_learning_rate=0.5, momentum=0.9)
        velocity = 0.9 * velocity + (w - average)
        w = w - 0.5 * velocity
        np.testing.assert_allclose(model["w"], w)
    assert state is not None
    np.testing.assert_allclose(state["velocity/w"], velocity)


def test_fedadam_step_matches_hand_computation() -> None:
    w, m, v = np.array([1.0, -1.0]), np.zeros(2), np.zeros(2)
    model: Model = {"w": w}
    state: dict[str, np.ndarray] | None = None
    for average in (np.array([0.5, -0.5]), np.array([0.2, 0.1])):
        model, state = fedadam_step(model, {"w": average}, state, server_learning_rate=0.1)
        d = average - w
        m, v = 0.9 * m + 0.1 * d, 0.99 * v + 0.01 * d * d
        w = w + 0.1 * m / (np.sqrt(v) + 1e-3)
        np.testing.assert_allclose(model["w"], w)
    assert state is not None and sorted(state) == ["m/w", "v/w"]


def test_steps_mutate_nothing_and_pass_unstepped_tensors_through() -> None:
    model = {"w": np.ones(2, np.float32), "n": np.array(1), "__opt__.m": np.zeros(2, np.float32)}
    aggregate = {"w": np.zeros(2, np.float32), "n": np.array(4), "__opt__.m": np.ones(2, np.float32)}
    state = {"velocity/w": np.full(2, 0.5, np.float32), "velocity/gone": np.zeros(1, np.float32)}
    saved = {key: value.copy() for key, value in state.items()}
    new_model, new_state = fedavgm_step(model, aggregate, state)
    assert new_model["n"] is aggregate["n"] and new_model["__opt__.m"] is aggregate["__opt__.m"]
    assert_same(state, saved)
    assert model["w"].tolist() == [1.0, 1.0]
    assert sorted(new_state) == ["velocity/gone", "velocity/w"]  # state of absent tensors carries over
    assert new_state["velocity/gone"] is not state["velocity/gone"]
    kept, _ = fedadam_step(model, {}, None)
    assert all(kept[name] is model[name] for name in model)


def test_defaults_are_the_classes_defaults() -> None:
    for cls, step in STEPS.items():
        class_defaults = {
            name: p.default
            for name, p in inspect.signature(cls).parameters.items()
            if p.default is not p.empty
        }
        step_defaults = {
            name: p.default
            for name, p in inspect.signature(step).parameters.items()
            if p.kind is p.KEYWORD_ONLY
        }
        assert class_defaults == step_defaults


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: fedavgm_step({}, {}, server_learning_rate=0), "server_learning_rate"),
        (lambda: fedavgm_step({}, {}, momentum=1.0), "momentum"),
        (lambda: fedadam_step({}, {}, beta1=-0.1), "beta1"),
        (lambda: fedadam_step({}, {}, beta2=1.5), "beta2"),
        (lambda: fedadam_step({}, {}, tau=0), "tau"),
        (lambda: fedadam_step({}, {}, server_learning_rate=float("inf")), "server_learning_rate"),
        (lambda: fedavgm_step({}, {}, {"m/w": np.zeros(1)}), r"fedavgm_step: unexpected state key 'm/w'"),
        (lambda: fedadam_step({}, {}, {"w": np.zeros(1)}), r"fedadam_step: unexpected state key 'w'"),
        (
            lambda: fedavgm_step({"w": np.zeros(2)}, {"w": np.zeros(2)}, {"velocity/w": np.zeros(3)}),
            r"state velocity/w has shape \(3,\), the tensor has \(2,\)",
        ),
        (
            lambda: fedavgm_step({}, {"w": np.zeros(2)}),
            r"tensor 'w' of the aggregate is not in the global model",
        ),
        (
            lambda: fedavgm_step({"w": np.zeros(2)}, {"w": np.zeros(3)}),
            r"tensor 'w' has shape \(3,\) in the aggregate, \(2,\) in the model",
        ),
        (
            lambda: fedadam_step({"w": np.zeros(2)}, {"w": np.zeros(2, np.float32)}),
            r"tensor 'w' has dtype float32 in the aggregate, float64 in the model",
        ),
        (
            lambda: fedadam_step({"w": np.zeros(2)}, {"w": [0.0, 0.0]}),  # type: ignore[dict-item]
            r"tensor 'w' of the aggregate is a list",
        ),
    ],
)
def test_bad_settings_state_and_models_are_refused(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
