"""The flow language on the single_process backend: transitions, include/exclude, private attributes,
loops, branches, the checks before a run, and the streaming average."""

from __future__ import annotations

import types

import numpy as np
import pytest

from openfl_cli.errors import UsageError
from openfl_cli.workflow import (
    Aggregator,
    Collaborator,
    FLSpec,
    LocalRuntime,
    aggregator,
    collaborator,
    fedavg,
)


def runtime(names=("a", "b", "c"), **kwargs) -> LocalRuntime:
    collaborators = []
    for index, name in enumerate(names):
        participant = Collaborator(name)
        participant.private_attributes = {"secret": index + 1, "data": np.full(3, float(index))}
        collaborators.append(participant)
    agg = Aggregator()
    agg.private_attributes = {"held_out": "aggregator only"}
    return LocalRuntime(aggregator=agg, collaborators=collaborators, **kwargs)


class Averaging(FLSpec):
    """Each collaborator adds its private data to the model; join averages; loops `rounds` times, and
    records what each side could see."""

    def __init__(self, rounds: int = 2, **kwargs) -> None:
        super().__init__(**kwargs)
        self.rounds = rounds
        self.model = np.zeros(3)

    @aggregator
    def start(self):
        self.collaborators = self.runtime.collaborators
        self.round = 0
        self.seen_at_start = sorted(vars(self))
        self.next(self.local_step, foreach="collaborators", exclude=["seen_at_start"])

    @collaborator
    def local_step(self):
        self.saw_held_out = hasattr(self, "held_out")
        self.saw_seen_at_start = hasattr(self, "seen_at_start")
        self.model = self.model + self.data + self.secret
        self.who = self.input
        self.scratch = "left behind"
        self.next(self.second_step, exclude=["scratch"])

    @collaborator
    def second_step(self):
        self.saw_scratch = hasattr(self, "scratch")
        self.next(self.join)

    @aggregator
    def join(self, inputs):
        self.input_attributes = sorted(vars(inputs[0]))
        self.names = [i.input for i in inputs]
        self.saw = {i.input: (i.saw_held_out, i.saw_seen_at_start, i.saw_scratch) for i in inputs}
        self.model = fedavg(inputs, "model")
        self.listed = np.mean([i.model for i in inputs], axis=0)
        self.round += 1
        if self.round < self.rounds:
            self.next(self.local_step, foreach="collaborators", exclude=["seen_at_start"])
        else:
            self.next(self.end)

    @aggregator
    def end(self):
        self.still_held_out = self.held_out
        print("done")


def test_attributes_travel_and_private_ones_stay_home() -> None:
    flow = Averaging(rounds=2)
    flow.runtime = runtime()
    flow.run()
    # round 1: 0 + (data i + secret i) averaged = mean(1, 3, 5) = 3; round 2: 3 + 3 = 6
    np.testing.assert_array_equal(flow.model, np.full(3, 6.0))
    np.testing.assert_array_equal(flow.model, flow.listed)
    assert flow.names == ["a", "b", "c"] and flow.round == 2
    assert flow.saw == {name: (False, False, False) for name in "abc"}  # held_out, excluded, excluded
    assert "secret" not in flow.input_attributes and "data" not in flow.input_attributes
    assert {"input", "who", "model"} <= set(flow.input_attributes) and "scratch" not in flow.input_attributes
    assert "held_out" in flow.seen_at_start  # the aggregator sees its own private attributes
    assert flow.still_held_out == "aggregator only"
    assert not hasattr(flow, "held_out") and not hasattr(flow, "secret")  # nothing private is returned


def test_include_sends_only_what_it_names() -> None:
    class Including(Averaging):
        @aggregator
        def start(self):
            self.collaborators = self.runtime.collaborators
            self.round, self.extra = 0, "kept home"
            self.next(
                self.local_step,
                foreach="collaborators",
                include=["model", "collaborators", "round", "rounds"],
            )

        @collaborator
        def local_step(self):
            self.saw_held_out = hasattr(self, "extra")
            self.saw_seen_at_start = False
            self.model = self.model + self.secret
            self.next(self.second_step)

    flow = Including(rounds=1)
    flow.runtime = runtime()
    flow.run()
    assert flow.saw["a"][0] is False and flow.extra == "kept home"


class Branching(FLSpec):
    @aggregator
    def start(self):
        self.collaborators = self.runtime.collaborators[:2]  # a foreach over a subset
        self.path = []
        self.next(self.work, foreach="collaborators")

    @collaborator
    def work(self):
        self.value = self.secret * 10
        self.next(self.join)

    @aggregator
    def join(self, inputs):
        total = sum(i.value for i in inputs)
        self.path.append(total)
        if total > 100:
            self.next(self.big)
        else:
            self.next(self.small)

    @aggregator
    def small(self):
        self.path.append("small")
        self.next(self.end)

    @aggregator
    def big(self):
        self.path.append("big")
        self.next(self.end)

    @aggregator
    def end(self):
        pass


def test_branches_and_a_foreach_over_some_collaborators() -> None:
    flow = Branching()
    flow.runtime = runtime()
    flow.run()
    assert flow.path == [30, "small"]


def flow_class(**steps) -> type[FLSpec]:
    return type("Broken", (FLSpec,), steps)


def _fresh(function):
    """A copy of `function` without a placement: decorators mark the function itself, and the cases
    below share their functions."""
    return types.FunctionType(
        function.__code__, function.__globals__, function.__name__, None, function.__closure__
    )


def _start_to(target: str, **next_kwargs):
    def start(self):
        self.collaborators = self.runtime.collaborators
        self.next(getattr(self, target), **next_kwargs)

    return aggregator(start)


def _end(self):
    pass


def _join(self, inputs):
    self.next(self.end)


def _work(self):
    self.next(self.join)


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ({"end": aggregator(_fresh(_end))}, r"the step `start` is missing"),
        ({"start": aggregator(_fresh(_end))}, r"the step `end` is missing"),
        (
            {"start": _start_to("end"), "end": _fresh(_end)},
            r"the step `end` is not a step \(mark it @aggregator\)",
        ),
        (
            {"start": _start_to("helper"), "helper": _fresh(_end), "end": aggregator(_fresh(_end))},
            r"step start: self.next\(helper\): helper has no placement decorator",
        ),
        (
            {
                "start": _start_to("work"),
                "work": collaborator(_fresh(_work)),
                "join": aggregator(_fresh(_join)),
                "end": aggregator(_fresh(_end)),
            },
            r"reached without foreach",
        ),
        (
            {
                "start": _start_to("work", foreach="collaborators"),
                "work": collaborator(_fresh(_work)),
                "join": aggregator(_fresh(_end)),
                "end": aggregator(_fresh(_end)),
            },
            r"step join joins the collaborators and must take their inputs: def join\(self, inputs\)",
        ),
        (
            {
                "start": _start_to("work", foreach="nothing_here"),
                "work": collaborator(_fresh(_work)),
                "join": aggregator(_fresh(_join)),
                "end": aggregator(_fresh(_end)),
            },
            r"step start: foreach='nothing_here' must name a non-empty list of collaborator names, got None",
        ),
        (
            {
                "start": _start_to("work", foreach="collaborators", include=["a"], exclude=["b"]),
                "work": collaborator(_fresh(_work)),
                "join": aggregator(_fresh(_join)),
                "end": aggregator(_fresh(_end)),
            },
            r"step start: self.next\(work\) takes include or exclude, not both",
        ),
        (
            {
                "start": _start_to("work", foreach="collaborators", exclude=["no_such_attribute"]),
                "work": collaborator(_fresh(_work)),
                "join": aggregator(_fresh(_join)),
                "end": aggregator(_fresh(_end)),
            },
            r"names attributes that do not exist: no_such_attribute",
        ),
        (
            {"start": aggregator(_fresh(_end)), "end": aggregator(_fresh(_end))},
            r"step start ended without self.next",
        ),
    ],
)
def test_a_broken_flow_is_refused_with_the_step_named(steps: dict, message: str) -> None:
    flow = flow_class(**steps)()
    flow.runtime = runtime()
    with pytest.raises(UsageError, match=message):
        flow.run()


def test_foreach_lists_only_collaborators_of_the_runtime() -> None:
    def start(self):
        self.targets = ["a", "zed"]
        self.next(self.work, foreach="targets")

    flow = flow_class(
        start=aggregator(start),
        work=collaborator(_fresh(_work)),
        join=aggregator(_fresh(_join)),
        end=aggregator(_fresh(_end)),
    )()
    flow.runtime = runtime()
    with pytest.raises(UsageError, match=r"lists zed, not collaborators of this runtime"):
        flow.run()


def test_the_callable_wins_over_the_dict_and_gets_its_keyword_arguments() -> None:
    participant = Collaborator("a", private_attributes_callable=lambda shard: {"shard": shard * 2}, shard=4)
    participant.private_attributes = {"shard": -1}
    assert participant.initialize_private_attributes() == {"shard": 8}
    with pytest.raises(UsageError, match="returned list, expected a dict"):
        Collaborator("b", private_attributes_callable=lambda: [1]).initialize_private_attributes()


def test_runtime_arguments_are_checked() -> None:
    with pytest.raises(UsageError, match="backend must be one of single_process, ray"):
        LocalRuntime(backend="threads")
    with pytest.raises(UsageError, match="unique: a"):
        LocalRuntime(collaborators=[Collaborator("a"), Collaborator("a")])
    with pytest.raises(UsageError, match="no runtime"):
        Averaging().run()


def test_fedavg_weights_mappings_and_errors() -> None:
    class Item:
        def __init__(self, **values) -> None:
            self.__dict__.update(values)

    items = [
        Item(m={"w": np.array([1.0, 2.0], np.float32), "n": np.array(7)}, k=1),
        Item(m={"w": np.array([3.0, 6.0], np.float32), "n": np.array(9)}, k=3),
    ]
    mean = fedavg(items, "m", weights="k")
    np.testing.assert_allclose(mean["w"], [2.5, 5.0])
    assert mean["w"].dtype == np.float32 and int(mean["n"]) == 7  # integers come from the first input
    assert fedavg(items, "k") == 2.0
    with pytest.raises(UsageError, match="no attribute 'missing'"):
        fedavg(items, "missing")
    with pytest.raises(UsageError, match="no inputs"):
        fedavg([], "m")


class BigModels(FLSpec):
    """Each collaborator sends a 2 MB array; the join reads them through fedavg and by hand."""

    @aggregator
    def start(self):
        self.collaborators = self.runtime.collaborators
        self.next(self.grow, foreach="collaborators")

    @collaborator
    def grow(self):
        self.model = np.full(1 << 18, float(self.secret))  # 2 MiB of float64
        self.tag = self.input
        self.next(self.join)

    @aggregator
    def join(self, inputs):
        self.spilled_names = [
            name for i in inputs for name in dir(i) if name == "model" and "model" not in vars(i)
        ]
        self.model = fedavg(inputs, "model")
        self.firsts = [float(i.model[0]) for i in inputs]
        self.tags = [i.tag for i in inputs]
        self.kept = inputs[-1]  # its model went to disk
        self.next(self.end)

    @aggregator
    def end(self):
        pass


def test_join_inputs_past_the_memory_budget_wait_on_disk() -> None:
    flow = BigModels()
    flow.runtime = runtime(names=("a", "b", "c", "d"), join_memory_budget=5 << 20)
    flow.run()
    np.testing.assert_array_equal(flow.model, np.full(1 << 18, 2.5))
    assert flow.firsts == [1.0, 2.0, 3.0, 4.0] and flow.tags == ["a", "b", "c", "d"]
    assert len(flow.spilled_names) == 2  # two 2 MiB models fit the 5 MiB budget, two went to disk
    assert flow.kept.tag == "d"  # small attributes stay readable; the spilled ones went with the join
    with pytest.raises(AttributeError, match="during the join step only"):
        _ = flow.kept.model


def test_spilled_arrays_come_back_through_the_tensor_codec_and_objects_by_value() -> None:
    from openfl_cli.workflow.inputs import join_inputs

    big = np.arange(1_200_000, dtype=np.int32).reshape(1200, 1000)[:, ::2]  # 2.4 MB, not contiguous
    mapping = {"w": np.ones((1024, 1024), np.float16), "s": np.array(3.5)}
    shared = [np.zeros(300_000)]
    with join_inputs(memory_budget=0) as store:
        store.add({"a": big, "m": mapping, "o": {"list": shared, "same": shared}, "small": 1})
        (item,) = store.inputs
        assert set(dir(item)) >= {"a", "m", "o", "small"} and vars(item)["small"] == 1
        assert "a" not in vars(item)  # on disk
        np.testing.assert_array_equal(item.a, big)
        assert item.a.flags.writeable and item.a.dtype == np.int32
        back = item.m
        assert back["s"].shape == () and back["w"].dtype == np.float16
        obj = item.o
        assert obj["list"] is obj["same"]  # objects spilled together stay shared
        folder = next(iter(store._folder.iterdir())).parent  # type: ignore[union-attr]
        assert oct(folder.stat().st_mode & 0o777) == "0o700"
        assert sorted(p.suffix for p in folder.iterdir()) == [".pkl", ".tensors", ".tensors"]
    assert not folder.exists()


def test_keyword_arguments_without_a_callable_are_refused() -> None:
    from openfl_cli.errors import UsageError

    with pytest.raises(UsageError, match="site1: index: keyword arguments go to private_attributes_callable"):
        Collaborator("site1", index=3)
