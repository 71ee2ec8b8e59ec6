"""The flow-state wire codec: round trips (values, identity, remapped experiment classes, PyTorch
models and optimizers) and refusals of payloads that would run code on the receiver."""

from __future__ import annotations

import collections
import datetime
import decimal
import fractions
import functools
import importlib.util
import io
import os
import pathlib
import pickle
import re
import subprocess
import sys
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from openfl_cli.errors import SecurityError
from openfl_cli.workflow.wire import EXPERIMENT_MODULE, WireRefused, dump_state, load_state
from tests.workflow import wire_experiment

REPO_ROOT = Path(__file__).resolve().parents[2]


def over_the_wire(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays as a receiver gets them: read-only arrays over the bytes that arrived."""
    return {
        key: np.frombuffer(array.tobytes(), array.dtype).reshape(array.shape) for key, array in arrays.items()
    }


def round_trip(state: dict[str, Any], module: types.ModuleType | None = None) -> dict[str, Any]:
    names = [module.__name__] if module is not None else []
    payload, arrays = dump_state(state, names)
    return load_state(payload, over_the_wire(arrays), module)


def fresh_copy(module: types.ModuleType, name: str) -> types.ModuleType:
    """Another module object run from the same file under another name, as an envoy loads it."""
    spec = importlib.util.spec_from_file_location(name, module.__file__)
    assert spec is not None and spec.loader is not None
    copy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(copy)
    return copy


class Reduces:
    """An object that pickles as the call `function(*args)`: what a hostile sender writes."""

    def __init__(self, function: Any, *args: Any) -> None:
        self.function, self.args = function, args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.function, self.args


def hostile(function: Any, *args: Any) -> bytes:
    return pickle.dumps({"x": Reduces(function, *args)}, protocol=5)


def naming(module: str, name: str) -> bytes:
    """A payload {"x": module.name}, written opcode by opcode (GLOBAL) whatever `module` holds."""
    return b"\x80\x05}\x8c\x01x" + b"c" + f"{module}\n{name}\n".encode() + b"s."


def with_reference(reference: Any) -> bytes:
    """A payload {"x": <persistent reference>} with any reference in it."""
    marker = object()

    class Referencing(pickle.Pickler):
        def persistent_id(self, obj: Any) -> Any:
            return reference if obj is marker else None

    buffer = io.BytesIO()
    Referencing(buffer, protocol=5).dump({"x": marker})
    return buffer.getvalue()


# --- round trips without PyTorch ---------------------------------------------------------------------


def test_numpy_values_plain_python_and_containers_round_trip() -> None:
    grid = np.arange(24, dtype=np.float64).reshape(4, 6)
    state = {
        "f32": np.linspace(0, 1, 7, dtype=np.float32),
        "i64": np.arange(-3, 3, dtype=np.int64),
        "mask": np.array([True, False, True]),
        "zero_d": np.array(2.5),
        "empty": np.zeros((0, 3), dtype=np.int16),
        "slice": grid[:, ::2],
        "fortran": np.asfortranarray(grid),
        "big_endian": np.arange(4, dtype=">i4"),
        "strings": np.array(["a", "bcd"]),
        "records": np.array([(1, 2.0), (3, 4.0)], dtype=[("n", "i4"), ("x", "f8")]),
        "objects": np.array([1, "a", None, [1, 2], np.arange(2)], dtype=object),
        "scalars": [np.float32(1.5), np.int64(-7), np.bool_(True), np.str_("s"), np.datetime64("2024-01-02")],
        "dtypes": [np.dtype("f4"), np.dtype([("a", "<i4"), ("b", "<f8", (2,))]), np.float32, np.int8],
        "plain": [None, True, 3, 2.5, 1 + 2j, "s", b"b", bytearray(b"a"), range(3), slice(1, 9), Ellipsis],
        "values": [
            datetime.datetime(2024, 5, 6, 7, 8, tzinfo=datetime.timezone.utc),
            datetime.date(2024, 5, 6),
            datetime.timedelta(seconds=3),
            decimal.Decimal("1.10"),
            fractions.Fraction(1, 3),
            pathlib.PurePosixPath("/data/shard"),
        ],
        "nested": {"d": {"t": (1, [2, {3}]), "fs": frozenset({4})}, "od": collections.OrderedDict(b=1, a=2)},
        "more": [collections.defaultdict(list, a=[1]), collections.deque([1, 2]), collections.Counter("aab")],
    }
    back = round_trip(state)
    assert back.keys() == state.keys()
    arrays = ["f32", "i64", "mask", "zero_d", "empty", "slice", "fortran", "big_endian", "strings", "records"]
    for name in arrays:
        assert back[name].dtype == state[name].dtype and back[name].shape == state[name].shape, name
        np.testing.assert_array_equal(back[name], state[name])
        assert back[name].flags.writeable, name  # a flow writes into its state
    assert back["objects"].dtype == object and back["objects"].shape == (5,)
    assert back["objects"][:4].tolist() == [1, "a", None, [1, 2]]
    np.testing.assert_array_equal(back["objects"][4], np.arange(2))
    assert [type(value) for value in back["scalars"]] == [type(value) for value in state["scalars"]]
    assert back["scalars"] == state["scalars"]
    assert back["dtypes"] == state["dtypes"]
    assert back["plain"] == state["plain"] and type(back["plain"][7]) is bytearray
    assert back["values"] == state["values"]
    assert back["nested"] == state["nested"] and type(back["nested"]["od"]) is collections.OrderedDict
    assert back["more"] == state["more"] and back["more"][0].default_factory is list


def test_an_object_met_twice_arrives_once() -> None:
    weights = np.ones(5, dtype=np.float32)
    items = np.array([weights, "x"], dtype=object)
    payload, arrays = dump_state({"a": weights, "b": [weights, items], "c": items})
    assert list(arrays) == ["0"]  # sent once
    back = load_state(payload, over_the_wire(arrays))
    assert back["a"] is back["b"][0] is back["c"][0]
    assert back["b"][1] is back["c"]


def test_arrays_are_sent_and_used_where_they_lie() -> None:
    weights = np.arange(12, dtype=np.float32)
    transposed = weights.reshape(3, 4).T
    payload, arrays = dump_state({"w": weights, "t": transposed})
    assert np.shares_memory(arrays["0"], weights)  # no copy of a C-contiguous array
    assert arrays["1"].flags.c_contiguous and not np.shares_memory(arrays["1"], weights)
    received = {key: array.copy() for key, array in arrays.items()}
    assert load_state(payload, received)["w"] is received["0"]  # writable: used as given
    readonly = over_the_wire(arrays)
    back = load_state(payload, readonly)["w"]
    assert back.flags.writeable and not np.shares_memory(back, readonly["0"])  # read-only: copied


def test_a_big_array_stays_out_of_the_pickle() -> None:
    big = np.zeros(16 * 1024 * 1024, dtype=np.float32)  # 64 MiB
    payload, arrays = dump_state({"big": big, "step": 3})
    assert len(payload) < 10_000
    assert arrays["0"].nbytes == big.nbytes and np.shares_memory(arrays["0"], big)


def test_experiment_classes_arrive_as_the_receivers_own() -> None:
    score = wire_experiment.Score("acc", np.array([0.5, 0.75]), wire_experiment.Stage.VALIDATE)
    state = {"score": score, "kind": wire_experiment.Score, "stage": wire_experiment.Stage.TRAIN}
    payload, arrays = dump_state(state, [wire_experiment.__name__])

    same = load_state(payload, over_the_wire(arrays), wire_experiment)
    assert type(same["score"]) is wire_experiment.Score and same["kind"] is wire_experiment.Score
    assert same["stage"] is wire_experiment.Stage.TRAIN

    envoy = fresh_copy(wire_experiment, f"{EXPERIMENT_MODULE}_ab12")
    there = load_state(payload, over_the_wire(arrays), envoy)
    assert type(there["score"]) is envoy.Score and type(there["score"]).__module__ == "fx_experiment_ab12"
    assert type(there["score"].detail) is envoy.Score.Detail
    assert there["score"].detail.note == "acc at validate"
    assert there["score"].stage is envoy.Stage.VALIDATE and there["stage"] is envoy.Stage.TRAIN
    assert there["kind"] is envoy.Score
    np.testing.assert_array_equal(there["score"].values, score.values)


def test_a_payload_naming_fx_experiment_resolves_in_the_experiment_module() -> None:
    back = load_state(naming(EXPERIMENT_MODULE, "Stage"), {}, wire_experiment)
    assert back == {"x": wire_experiment.Stage}
    back = load_state(naming(wire_experiment.__name__, "Score.Detail"), {}, wire_experiment)
    assert back == {"x": wire_experiment.Score.Detail}


def test_what_cannot_travel_fails_on_the_sender() -> None:
    module = [wire_experiment.__name__]
    with pytest.raises(TypeError, match="summarize: functions do not travel"):
        dump_state({"f": wire_experiment.summarize}, module)

    class Local:
        pass

    Local.__module__ = wire_experiment.__name__
    with pytest.raises(TypeError, match="defined inside a function"):
        dump_state({"c": Local}, module)
    with pytest.raises(TypeError, match="MaskedArray"):
        dump_state({"m": np.ma.masked_array([1, 2], mask=[0, 1])})
    with pytest.raises(TypeError, match="StringDType"):
        dump_state({"s": np.array(["a"], dtype=np.dtypes.StringDType())})
    with pytest.raises(TypeError, match="attribute names must be strings"):
        dump_state({1: "x"})  # type: ignore[dict-item]


def test_torch_is_not_imported_without_tensors() -> None:
    script = (
        "import sys, numpy as np\n"
        "from openfl_cli.workflow.wire import dump_state, load_state\n"
        "payload, arrays = dump_state({'w': np.ones(3), 'o': np.array([None]), 'n': np.float32(1)})\n"
        "load_state(payload, arrays)\n"
        "print('torch' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


# --- refusals ----------------------------------------------------------------------------------------


def test_a_payload_that_runs_os_system_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    payload = hostile(os.system, f"touch {marker}")
    pickle.loads(payload)  # the payload is live: plain pickle runs the command
    assert marker.exists()
    marker.unlink()
    refused = r"names (os|posix)\.system, which is not allowed \(allowed: "
    with pytest.raises(WireRefused, match=refused) as refusal:
        load_state(payload, {})
    assert isinstance(refusal.value, SecurityError)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("function", "args", "named"),
    [
        (eval, ("1 + 1",), "builtins.eval"),
        (exec, ("x = 1",), "builtins.exec"),
        (getattr, (dict, "fromkeys"), "builtins.getattr"),
        (__import__, ("os",), "builtins.__import__"),
        (subprocess.Popen, (["true"],), "subprocess.Popen"),
        (functools.partial, (int, "1"), "functools.partial"),
        (importlib.import_module, ("os",), "importlib.import_module"),
        (np.load, ("x.npy",), "numpy.load"),
        # raw bytes read as object pointers: plain pickle would crash the receiver
        (np.ndarray, ((1,), np.dtype(object), b"AAAAAAAA"), "numpy.ndarray"),
        (np.dtype, ("f4",), "numpy.dtype"),
    ],
)
def test_hostile_callables_are_refused(function: Any, args: tuple[Any, ...], named: str) -> None:
    with pytest.raises(WireRefused, match=rf"names {named}, which is not allowed"):
        load_state(hostile(function, *args), {})


def test_the_experiment_module_admits_only_the_classes_it_defines() -> None:
    module = wire_experiment.__name__
    assert load_state(naming(module, "Score"), {}, wire_experiment) == {"x": wire_experiment.Score}
    for payload in (naming(module, "summarize"), with_reference(("class", "summarize"))):
        with pytest.raises(WireRefused, match="summarize, which is a function: functions and lambdas do not"):
            load_state(payload, {}, wire_experiment)
    for name in ("system", "Popen"):  # imported from os and subprocess, not defined there
        for payload in (naming(module, name), with_reference(("class", name))):
            with pytest.raises(WireRefused, match=rf"{name}, which is (imported from|a function)"):
                load_state(payload, {}, wire_experiment)
    for name, why in [
        ("Nope", "not a class"),
        ("Score.__init__", "not a class name"),
        ("__class__", "not a class name"),  # else type, a class
        ("Score.<locals>.X", "not a class name"),
        ("np.ndarray", "imported from numpy"),
    ]:
        where = re.escape(f"{module}.{name}")
        with pytest.raises(WireRefused, match=rf"names {where}, which is {why}"):
            load_state(with_reference(("class", name)), {}, wire_experiment)
    with pytest.raises(WireRefused, match="no experiment is loaded"):
        load_state(with_reference(("class", "Score")), {})
    with pytest.raises(WireRefused, match="not allowed"):
        load_state(naming(module, "Score"), {})  # no experiment module: its name means nothing


@pytest.mark.parametrize(
    "reference",
    [
        "nonsense",
        (),
        ("array",),
        ("array", 0),
        ("array", "9"),
        ("array", "0", "extra"),
        ("tensor", "0", "float32", (3,), True),
        ("tensor", "0", "float32", (-1,), False, False),
        ("objects", "0", (3,), [1]),
        ("objects", "0", (1,), (1,)),
        ("class", 3),
        ("dtype", {"names": ["a"], "formats": ["O"]}),
        ("dtype", "not a dtype"),
        ("nonsense", "0"),
    ],
)
def test_malformed_references_are_refused(reference: Any) -> None:
    arrays = {"0": np.zeros(3, dtype=np.float32)}
    with pytest.raises(WireRefused, match=r"malformed|did not arrive"):
        load_state(with_reference(reference), arrays)


def test_arrays_that_are_not_plain_memory_are_refused() -> None:
    payload, _ = dump_state({"w": np.ones(2)})
    for arrays in ({"0": np.array([None, 1])}, {"0": [1.0, 2.0]}, {}):
        with pytest.raises(WireRefused, match="did not arrive as a plain array"):
            load_state(payload, arrays)  # type: ignore[arg-type]


def test_a_payload_cannot_set_attributes_on_an_admitted_class() -> None:
    # {"x": fractions.Fraction}, then BUILD on the class itself with the slot state {"poisoned": 7}
    payload = b"\x80\x05}\x8c\x01xcfractions\nFraction\nN}\x8c\x08poisonedK\x07s\x86bs."
    try:
        with pytest.raises(WireRefused):
            load_state(payload, {})
    finally:
        had = hasattr(fractions.Fraction, "poisoned")
        if had:
            del fractions.Fraction.poisoned  # type: ignore[attr-defined]
    assert not had


def test_truncated_garbled_or_padded_payloads_are_refused() -> None:
    payload, arrays = dump_state({"w": np.ones(2), "n": [1, 2, {"a": "b" * 100}]})
    assert load_state(payload, arrays)["n"][2]["a"] == "b" * 100
    for broken in [payload[:cut] for cut in range(0, len(payload), 7)] + [b"not a pickle", b"\x80\x05K"]:
        with pytest.raises(WireRefused, match="does not decode"):
            load_state(broken, arrays)
    with pytest.raises(WireRefused, match="past the end"):
        load_state(payload + b"\x00", arrays)
    with pytest.raises(WireRefused, match="not a flow state"):
        load_state(pickle.dumps([1, 2]), {})


# --- PyTorch -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seed() -> types.ModuleType:
    pytest.importorskip("torch")
    from tests.workflow import seed_flows

    return seed_flows


def trained(seed: types.ModuleType, steps: int = 3) -> tuple[Any, Any, Any, Any]:
    """The seed's Net after a few SGD steps (momentum buffers) and one Adam step, and a data batch."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    model = seed.Net()
    sgd = torch.optim.SGD(model.parameters(), lr=seed.learning_rate, momentum=seed.momentum)
    adam = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(seed.mnist_train, batch_size=32)
    batches = iter(loader)
    for _ in range(steps):
        data, target = next(batches)
        for optimizer in (sgd, adam):
            optimizer.zero_grad()
            F.nll_loss(model(data), target).backward()
            optimizer.step()
    return model, sgd, adam, next(batches)


@pytest.mark.torch
def test_the_seed_model_and_optimizers_round_trip(seed: types.ModuleType) -> None:
    import torch
    import torch.nn.functional as F

    model, sgd, adam, (data, target) = trained(seed)
    frozen = torch.nn.Parameter(torch.randn(3), requires_grad=False)
    extras = {
        "bf16": torch.randn(2, 3).to(torch.bfloat16),
        "bf16_scalar": torch.tensor(1.5, dtype=torch.bfloat16),
        "half": torch.randn(4).half(),
        "flags": torch.tensor([True, False]),
        "complex": torch.randn(3, dtype=torch.complex64),
        "ints": torch.arange(6).reshape(2, 3),
        "transposed": torch.randn(3, 4).t(),
        "conjugated": torch.randn(2, dtype=torch.complex64).conj(),
        "frozen": frozen,
        "grad": torch.ones(2, requires_grad=True),
    }
    state = {"model": model, "optimizer": sgd, "adam": adam, "shared": model.fc.bias, **extras}
    payload, arrays = dump_state(state, [seed.__name__])
    assert "torch" in sys.modules and len(payload) < 20_000
    envoy = fresh_copy(seed, f"{EXPERIMENT_MODULE}_seed")
    back = load_state(payload, over_the_wire(arrays), envoy)

    loaded, loaded_sgd, loaded_adam = back["model"], back["optimizer"], back["adam"]
    assert type(loaded) is envoy.Net
    for (name, original), (_, copy) in zip(model.named_parameters(), loaded.named_parameters(), strict=True):
        assert type(copy) is torch.nn.Parameter and copy.requires_grad, name
        assert copy.dtype == original.dtype and torch.equal(copy, original), name
    with torch.no_grad():
        assert torch.equal(loaded(data), model(data))
    # one set of Parameters: the model's, the optimizers' and their state's keys
    assert loaded_sgd.param_groups[0]["params"][0] is loaded.conv.weight
    assert list(map(id, loaded_adam.param_groups[0]["params"])) == list(map(id, loaded.parameters()))
    assert back["shared"] is loaded.fc.bias
    assert set(map(id, loaded_sgd.state)) == set(map(id, loaded.parameters()))
    for original, copy in zip(model.parameters(), loaded.parameters(), strict=True):
        assert torch.equal(loaded_sgd.state[copy]["momentum_buffer"], sgd.state[original]["momentum_buffer"])
        for key in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(loaded_adam.state[copy][key], adam.state[original][key]), key
    assert loaded_sgd.param_groups[0]["momentum"] == seed.momentum

    for name, original in extras.items():
        copy = back[name]
        assert copy.dtype == original.dtype and copy.shape == original.shape, name
        assert copy.requires_grad == original.requires_grad, name
        assert isinstance(copy, torch.nn.Parameter) == isinstance(original, torch.nn.Parameter), name
        assert torch.equal(copy, original.detach().resolve_conj()), name

    # still trainable, and independent of the sender's objects
    before, sent = loaded.conv.weight.detach().clone(), model.conv.weight.detach().clone()
    loaded_sgd.zero_grad()
    F.nll_loss(loaded(data), target).backward()
    loaded_sgd.step()
    assert not torch.equal(loaded.conv.weight, before)
    assert torch.equal(model.conv.weight, sent)


@pytest.mark.torch
def test_modules_and_schedulers_of_torch_itself_travel(seed: types.ModuleType) -> None:
    import torch
    from torch import nn

    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Dropout(0.1))
    optimizer = torch.optim.AdamW(model.parameters())
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1)
    state = {
        "model": model,
        "lstm": nn.LSTM(3, 4),
        "scheduler": scheduler,
        "device": torch.device("cpu"),
        "dtype": torch.float16,
        "size": torch.Size([2, 3]),
    }
    back = round_trip(state)
    assert type(back["model"][1]) is nn.BatchNorm2d and back["lstm"].hidden_size == 4
    assert back["scheduler"].optimizer.param_groups[0]["params"][0] is back["model"][0].weight
    assert back["device"] == torch.device("cpu") and back["dtype"] is torch.float16
    assert back["size"] == torch.Size([2, 3]) and type(back["size"]) is torch.Size
    sample = torch.randn(1, 1, 5, 5)
    back["model"].eval(), model.eval()
    assert torch.equal(back["model"](sample), model(sample))


@pytest.mark.torch
def test_a_receiver_without_pytorch_refuses_tensors(seed: types.ModuleType, tmp_path: Path) -> None:
    import torch

    payload, arrays = dump_state({"t": torch.ones(2), "w": np.ones(2)})
    (tmp_path / "payload").write_bytes(payload)
    np.savez(tmp_path / "arrays.npz", **arrays)
    script = (
        "import sys, numpy as np\n"
        "sys.modules['torch'] = None  # as if PyTorch were not installed: importing it fails\n"
        "from openfl_cli.workflow.wire import WireRefused, load_state\n"
        f"payload = open({str(tmp_path / 'payload')!r}, 'rb').read()\n"
        f"arrays = dict(np.load({str(tmp_path / 'arrays.npz')!r}))\n"
        "for payload in (payload, b'\\x80\\x05ctorch\\nfloat32\\n.'):\n"
        "    try:\n"
        "        load_state(payload, arrays)\n"
        "    except WireRefused as refusal:\n"
        "        print(refusal)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "the payload holds tensors; PyTorch is not installed here",
        "the payload names torch.float32, which is not allowed (allowed: plain Python values, NumPy "
        "scalar types, PyTorch's own modules, optimizers and schedulers, and classes the experiment "
        "module defines)",
    ]


@pytest.mark.torch
def test_a_wide_model_stays_out_of_the_pickle(seed: types.ModuleType) -> None:
    model = seed.WideNet()
    payload, arrays = dump_state({"model": model}, [seed.__name__])
    assert len(payload) < 10_000
    assert sum(array.nbytes for array in arrays.values()) > 45_000_000


@pytest.mark.torch
def test_tensors_that_cannot_travel_fail_on_the_sender(seed: types.ModuleType) -> None:
    import torch

    class Tagged(torch.Tensor):
        pass

    with pytest.raises(TypeError, match="only tensors and Parameters travel"):
        dump_state({"t": torch.ones(2).as_subclass(Tagged)})
    with pytest.raises(TypeError, match="sparse"):
        dump_state({"t": torch.eye(2).to_sparse()})


@pytest.mark.torch
def test_cuda_tensors_arrive_on_the_cpu(seed: types.ModuleType) -> None:
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    weights = torch.nn.Parameter(torch.randn(3, device="cuda"))
    back = round_trip({"w": weights, "again": weights})
    assert back["w"].device.type == "cpu" and type(back["w"]) is torch.nn.Parameter
    assert back["again"] is back["w"] and torch.equal(back["w"], weights.cpu())


@pytest.mark.torch
@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("torch.serialization", "load"),
        ("torch", "load"),
        ("torch._utils", "_rebuild_tensor_v2"),
        ("torch._utils", "_rebuild_parameter"),
        ("torch.storage", "_load_from_bytes"),
        ("torch.nn.functional", "relu"),
        ("torch.nn.modules.module", "OrderedDict"),  # a class torch imports, not defines
        ("torch.nn.modules.module", "register_module_forward_hook"),
        ("torch.optim.optimizer", "Tensor"),
        ("torch.optim.lr_scheduler", "LambdaLR.__init__"),
        ("torch.hub", "load"),
    ],
)
def test_torch_globals_outside_the_allowlist_are_refused(seed: object, module: str, name: str) -> None:
    with pytest.raises(WireRefused, match=rf"names {module}\.{name}, which is not allowed"):
        load_state(naming(module, name), {})


@pytest.mark.torch
def test_tensors_pickled_the_usual_way_and_bad_tensor_references_are_refused(seed: types.ModuleType) -> None:
    import torch

    with pytest.raises(WireRefused, match=r"torch\._utils\._rebuild_tensor_v2, which is not allowed"):
        load_state(pickle.dumps({"t": torch.ones(2)}), {})
    with pytest.raises(WireRefused, match=r"torch\.serialization\.load, which is not allowed"):
        load_state(hostile(torch.load, "model.pt"), {})
    arrays = {"0": np.zeros(3, dtype=np.float32), "1": np.zeros(3, dtype=np.int64)}
    for reference in [
        ("tensor", "0", "os", (3,), False, False),
        ("tensor", "0", "Tensor", (3,), False, False),
        ("tensor", "0", "float32", (4,), False, False),
        ("tensor", "0", "bfloat16", (3,), False, False),  # 4-byte bits for a 2-byte dtype
        ("tensor", "1", "int64", (3,), True, False),  # integers cannot require grad
    ]:
        with pytest.raises(WireRefused, match="does not fit its array"):
            load_state(with_reference(reference), arrays)
