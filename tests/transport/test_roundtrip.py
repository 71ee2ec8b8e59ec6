"""Models down and results up through a real server with mutual TLS on 127.0.0.1."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from openfl_cli.tensors.codec import SUPPORTED_DTYPES
from openfl_cli.tensors.pipelines import QuantizationPipeline, SparsityPipeline
from openfl_cli.transport.limits import Limits
from openfl_cli.transport.messages import Action, RefusalCode, Refused
from openfl_cli.transport.server import AggregatorServer
from tests.transport.conftest import ClientFactory
from tests.transport.fakes import PLAN_HASH, FakeService


def _every_dtype() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(2)
    model: dict[str, np.ndarray] = {}
    for name in SUPPORTED_DTYPES:
        values = rng.integers(0, 2, size=(3, 5)) if name == "bool" else rng.integers(0, 100, size=(3, 5))
        model[f"{name}.matrix"] = values.astype(name)
        model[f"{name}.scalar"] = np.array(values[0, 0], dtype=name)
        model[f"{name}.empty"] = np.zeros((0, 2), dtype=name)
    return model


def test_ping_carries_the_plan(make_client: ClientFactory) -> None:
    reply = make_client().ping()
    assert (reply.aggregator, reply.plan_hash, reply.round_number) == ("aggregator.test", PLAN_HASH, 0)


def test_every_dtype_round_trips(make_client: ClientFactory, service: FakeService) -> None:
    service.model = _every_dtype()
    client = make_client()
    model = client.get_model(0)
    assert list(model) == list(service.model)
    for name, array in service.model.items():
        assert model[name].dtype == array.dtype and model[name].shape == array.shape, name
        np.testing.assert_array_equal(model[name], array)

    report = client.send_result(0, "train", {"loss": 0.25, "acc": 1.0}, 42, model)
    (result,) = service.results
    assert (result.collaborator, result.round_number, result.task_name) == ("one", 0, "train")
    assert result.metrics == {"loss": 0.25, "acc": 1.0} and result.sample_count == 42
    for name, array in service.model.items():
        np.testing.assert_array_equal(result.tensors[name], array)
    raw = sum(array.nbytes for array in service.model.values())
    assert report.raw_bytes == raw and report.sent_bytes > raw


def test_tensor_bigger_than_many_chunks(pki, service: FakeService) -> None:
    limits = Limits(chunk_bytes=4096, max_message_bytes=1 << 20)
    service.model = {
        "big": np.random.default_rng(3).standard_normal((300, 101)).astype(np.float64),
        "tiny": np.ones(3, dtype=np.float32),
    }
    from openfl_cli.transport.client import AggregatorClient

    with (
        AggregatorServer(service, "127.0.0.1", 0, pki.server.material(), limits=limits) as server,
        AggregatorClient(
            "127.0.0.1", server.port, "one", PLAN_HASH, pki.clients["one"].material(), limits=limits
        ) as client,
    ):
        model = client.get_model(0)
        np.testing.assert_array_equal(model["big"], service.model["big"])
        client.send_result(0, "train", {}, 1, model)
    np.testing.assert_array_equal(service.results[0].tensors["big"], service.model["big"])


@pytest.mark.parametrize("pipeline", [SparsityPipeline(p_sparsity=0.1), QuantizationPipeline(n_bits=8)])
def test_compressed_uploads(make_client: ClientFactory, service: FakeService, pipeline) -> None:
    client = make_client(pipeline=pipeline)
    model = client.get_model(0)
    report = client.send_result(0, "train", {"loss": 1.0}, 3, model)
    assert report.sent_bytes < report.raw_bytes
    received = service.results[0].tensors
    weight = service.model["dense.weight"]
    assert received["dense.weight"].shape == weight.shape and received["dense.weight"].dtype == weight.dtype
    if isinstance(pipeline, QuantizationPipeline):
        np.testing.assert_allclose(received["dense.weight"], weight, atol=float(np.ptp(weight)) / 255)
    np.testing.assert_array_equal(received["steps"], service.model["steps"])


def test_long_poll_returns_when_work_arrives(make_client: ClientFactory, service: FakeService) -> None:
    client = make_client()
    started = time.monotonic()
    assert client.get_tasks(0.2).action is Action.WAIT
    assert 0.15 < time.monotonic() - started < 2.0

    threading.Timer(0.3, service.work.set).start()
    started = time.monotonic()
    assignment = client.get_tasks(10.0)
    elapsed = time.monotonic() - started
    assert assignment.action is Action.RUN and elapsed < 2.0
    (task,) = assignment.tasks
    assert (task.name, task.function, task.kwargs) == ("train", "train_task", {"epochs": 1, "note": "é"})


def test_service_refusals_reach_the_collaborator(make_client: ClientFactory, service: FakeService) -> None:
    client = make_client()
    with pytest.raises(Refused) as late:
        client.get_model(5)
    assert late.value.code is RefusalCode.LATE and "round 5 is closed" in late.value.reason

    model = client.get_model(0)
    client.send_result(0, "train", {}, 1, model)
    with pytest.raises(Refused, match="duplicate: the result of train was already received") as again:
        client.send_result(0, "train", {}, 1, model)
    assert again.value.code is RefusalCode.DUPLICATE
    with pytest.raises(Refused, match="unknown tensor 'extra'"):
        client.send_result(0, "validate", {}, 1, {**model, "extra": np.zeros(2)})
    with pytest.raises(Refused, match="is float64 \\[16\\], the model has float32 \\[16\\]"):
        client.send_result(0, "validate", {}, 1, {"dense.bias": np.zeros(16)})
    assert len(service.results) == 1


def test_several_collaborators_at_once(make_client: ClientFactory, service: FakeService) -> None:
    clients = [make_client("one"), make_client("two")]
    errors: list[BaseException] = []

    def work(client) -> None:
        try:
            client.send_result(0, "train", {}, 1, client.get_model(0))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert not errors
    assert sorted(result.collaborator for result in service.results) == ["one", "two"]


def _available_bytes() -> int:
    try:
        meminfo = Path("/proc/meminfo").read_text(encoding="ascii")
    except OSError:
        return 0
    found = re.search(r"^MemAvailable:\s+(\d+) kB", meminfo, re.M)
    return int(found.group(1)) * 1024 if found else 0


# client copy + server's assembly + the fake sink's copy, 2 GiB each, and room to spare
@pytest.mark.skipif(_available_bytes() < 10 << 30, reason="needs about 7 GiB of free memory")
def test_a_tensor_beyond_2_gib_goes_down_and_up(make_client: ClientFactory, service: FakeService) -> None:
    """One tensor larger than protobuf's and gRPC's 2 GiB message limits, each way over mutual TLS.
    Zeros cost no memory until written; markers every 256 MiB (and past 2 GiB) catch misplaced chunks."""
    size = (2 << 30) + 3 * 1024 * 1024 + 5
    big = np.zeros(size, np.uint8)
    markers = [*range(0, size, 256 << 20), (2 << 30) + 7, size - 1]
    big[markers] = np.arange(1, len(markers) + 1, dtype=np.uint8)
    service.model = {"big": big, "tail": np.arange(3, dtype=np.float32)}
    client = make_client()
    model = client.get_model(0)
    assert model["big"].shape == (size,)
    assert np.count_nonzero(model["big"]) == len(markers)
    assert model["big"][markers].tolist() == list(range(1, len(markers) + 1))
    report = client.send_result(0, "train", {}, 1, model)
    assert report.raw_bytes == size + 12
    del model
    received = service.results[0].tensors["big"]
    assert np.count_nonzero(received) == len(markers)
    assert received[markers].tolist() == list(range(1, len(markers) + 1))
