"""The Client API facade: no context -> RuntimeError; with a session bound to the thread (in-process)
or named by the environment (ex-process), each call acts on it."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import openfl_cli.client as flare
from openfl_cli.client import session as session_module
from openfl_cli.client.channel import Message, QueueEndpoint, SocketEndpoint, queue_pair
from openfl_cli.client.session import ENV_FD, ENV_JOB, ENV_SITE, ClientSession, bound


@pytest.fixture(autouse=True)
def _no_process_session(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(ENV_FD, raising=False)
    monkeypatch.setattr(session_module, "_process_session", None)
    yield


CALLS: list[tuple[str, Callable[[], Any]]] = [
    ("init", lambda: flare.init()),
    ("receive", lambda: flare.receive()),
    ("send", lambda: flare.send(flare.FLModel())),
    ("is_running", lambda: flare.is_running()),
    ("is_train", lambda: flare.is_train()),
    ("is_evaluate", lambda: flare.is_evaluate()),
    ("is_submit_model", lambda: flare.is_submit_model()),
    ("get_site_name", lambda: flare.get_site_name()),
    ("get_job_id", lambda: flare.get_job_id()),
    ("system_info", lambda: flare.system_info()),
    ("log", lambda: flare.log("loss", 1.0)),
]


@pytest.mark.parametrize(("name", "call"), CALLS, ids=[name for name, _ in CALLS])
def test_without_a_context_every_call_says_so(name: str, call: Callable[[], Any]) -> None:
    with pytest.raises(RuntimeError) as raised:
        call()
    assert str(raised.value) == (
        "openfl_cli.client: no federated context; run this script through a FedJob (ScriptRunner) or fx"
    )


def a_session(framework: str = "numpy") -> tuple[ClientSession, QueueEndpoint]:
    runner, script = queue_pair()
    return ClientSession("site-1", "job-7", framework, endpoint=script), runner


def task(seq: int = 1, kind: str = "train", round_number: int = 0) -> Message:
    return Message(
        kind="task",
        seq=seq,
        task=kind,
        round=round_number,
        total_rounds=3,
        params={"w": np.ones(2, dtype=np.float32)},
        params_type="FULL",
        meta={"site_name": "site-1"},
    )


def test_a_bound_session_answers_the_calls_of_its_thread_only() -> None:
    session, _runner = a_session()
    seen: dict[str, Any] = {}

    def other_thread() -> None:
        try:
            flare.get_site_name()
        except RuntimeError as exc:
            seen["other"] = str(exc)

    with bound(session):
        flare.init()
        assert flare.system_info() == {"site_name": "site-1", "job_id": "job-7"}
        assert flare.get_site_name() == "site-1" and flare.get_job_id() == "job-7"
        assert flare.is_running() and not flare.is_train() and not flare.is_submit_model()
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
    assert "no federated context" in seen["other"]
    with pytest.raises(RuntimeError):
        flare.get_site_name()  # unbound again


def test_the_task_loop() -> None:
    session, runner = a_session()
    with bound(session):
        with pytest.raises(RuntimeError, match="call receive"):
            flare.send(flare.FLModel(params={"w": np.zeros(2)}))
        runner.send(task())
        model = flare.receive()
        assert model is not None and model.current_round == 0 and model.total_rounds == 3
        assert model.params_type is flare.ParamsType.FULL and model.meta == {"site_name": "site-1"}
        assert flare.is_train() and not flare.is_evaluate()
        assert flare.receive() is model  # not answered yet: the same task
        flare.log("loss", np.float32(0.25), step=0)
        flare.log("parts", {"a": 1, "b": 2}, data_type="metrics")
        flare.send(flare.FLModel(params={"w": model.params["w"] * 3}, metrics={"acc": 0.5}))
        with pytest.raises(RuntimeError, match="call receive"):
            flare.send(flare.FLModel(params={}))
        runner.send(task(2, "evaluate", 1))
        assert flare.receive() is not None and flare.is_evaluate()
        flare.send(flare.FLModel(metrics={"acc": 0.7}), clear_cache=False)
        assert flare.receive() is not None  # kept
        with pytest.raises(RuntimeError, match="answered already"):
            flare.send(flare.FLModel(metrics={"acc": 0.7}))
    logged = [runner.receive(0), runner.receive(0)]
    assert [(m.kind, m.metrics, m.meta.get("step")) for m in logged if m] == [
        ("log", {"loss": 0.25}, 0),
        ("log", {"parts/a": 1.0, "parts/b": 2.0}, None),
    ]
    result = runner.receive(0)
    assert result is not None and result.kind == "result" and result.seq == 1 and result.round == 0
    assert result.metrics == {"acc": 0.5} and result.params_type == "FULL"
    np.testing.assert_array_equal(result.params["w"], [3.0, 3.0])  # type: ignore[index]
    evaluated = runner.receive(0)
    assert evaluated is not None and evaluated.seq == 2 and evaluated.params is None


def test_the_end_of_the_job() -> None:
    session, runner = a_session()
    with bound(session):
        runner.send(task())
        model = flare.receive()
        assert model is not None
        flare.send(flare.FLModel(params=model.params))
        runner.send(Message(kind="end"))
        assert flare.receive() is None and not flare.is_running()
        assert flare.receive() is None


def test_a_runner_that_goes_away_ends_the_loop() -> None:
    session, runner = a_session()
    runner.close()
    with bound(session):
        assert flare.receive() is None and not flare.is_running()


def test_bad_calls_are_refused() -> None:
    session, runner = a_session()
    with bound(session):
        runner.send(task())
        flare.receive()
        with pytest.raises(TypeError, match="FLModel"):
            flare.send({"w": 1})  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="finite"):
            flare.log("loss", float("nan"))
        with pytest.raises(ValueError, match="data_type"):
            flare.log("loss", 1.0, data_type="image")
        with pytest.raises(ValueError, match="numeric"):
            flare.send(flare.FLModel(params={"w": np.array(["a"])}))


def test_an_unknown_framework_is_refused() -> None:
    with pytest.raises(ValueError, match="framework"):
        ClientSession("s", "j", "jax", endpoint=queue_pair()[1])


def test_ex_process_context_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    ours, theirs = socket.socketpair()
    runner = SocketEndpoint(ours)
    monkeypatch.setenv(ENV_FD, str(theirs.fileno()))
    monkeypatch.setenv(ENV_SITE, "site-9")
    monkeypatch.setenv(ENV_JOB, "job-x")
    try:
        flare.init()
        assert flare.get_site_name() == "site-9" and flare.get_job_id() == "job-x"
        runner.send(task())
        model = flare.receive()
        assert model is not None and model.params is not None
        flare.send(flare.FLModel(params={"w": model.params["w"] + 1}))
        answer = runner.receive(2.0)
        assert answer is not None and answer.kind == "result"
        np.testing.assert_array_equal(answer.params["w"], [2.0, 2.0])  # type: ignore[index]
        runner.send(Message(kind="end"))
        assert flare.receive() is None and not flare.is_running()
    finally:
        runner.close()
        process_session = session_module._process_session
        if process_session is not None and process_session._endpoint is not None:
            process_session._endpoint.close()
