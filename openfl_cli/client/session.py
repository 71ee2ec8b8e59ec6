"""The script's side of a site's channel, and how a call finds the one it belongs to.

In-process, the runner binds a session to the thread that runs the script (thread-local), so many
scripts in threads of one process each see their own. Ex-process, the runner sets environment
variables for the child (`FX_CLIENT_FD`, `FX_CLIENT_SITE`, `FX_CLIENT_JOB`, `FX_CLIENT_FRAMEWORK`),
and the process's one session connects to the inherited socket on `init()` (or on first use).
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from numbers import Real
from typing import Any

from openfl_cli.client.channel import ChannelClosed, ChannelError, Endpoint, Message, connect_fd
from openfl_cli.client.model import FLModel, ParamsType
from openfl_cli.client.params import check_framework, from_script, to_script

NO_CONTEXT = "openfl_cli.client: no federated context; run this script through a FedJob (ScriptRunner) or fx"
ENV_FD = "FX_CLIENT_FD"
ENV_SITE = "FX_CLIENT_SITE"
ENV_JOB = "FX_CLIENT_JOB"
ENV_FRAMEWORK = "FX_CLIENT_FRAMEWORK"
SCALAR_TYPES = ("scalar", "metric")  # log(key, number)
MAPPING_TYPES = ("scalars", "metrics")  # log(key, {name: number}) -> key/name


class ClientSession:
    """One site's script side: receive a task's model, send its result, log metrics."""

    def __init__(
        self,
        site_name: str,
        job_id: str,
        framework: str = "numpy",
        endpoint: Endpoint | None = None,
        connect: Callable[[], Endpoint] | None = None,
    ) -> None:
        if endpoint is None and connect is None:
            raise ValueError("a client session needs an endpoint or a way to connect")
        self.site_name = site_name
        self.job_id = job_id
        self.framework = check_framework(framework)
        self.rank: int | str | None = None
        self._endpoint = endpoint
        self._connect = connect
        self._connect_lock = threading.Lock()
        self._running = True
        self._task: Message | None = None  # the task being worked on
        self._model: FLModel | None = None  # its model, as handed to the script
        self._answered = False

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> ClientSession:
        fd = env[ENV_FD]
        return cls(
            env.get(ENV_SITE, ""),
            env.get(ENV_JOB, ""),
            env.get(ENV_FRAMEWORK, "numpy"),
            connect=lambda: connect_fd(fd),
        )

    def init(self, rank: int | str | None = None) -> None:
        self.rank = rank
        self._connected()

    def _connected(self) -> Endpoint:
        with self._connect_lock:
            if self._endpoint is None:
                assert self._connect is not None
                self._endpoint = self._connect()
            return self._endpoint

    # --- the task loop -----------------------------------------------------------------------------
    def is_running(self) -> bool:
        return self._running

    def receive(self, timeout: float | None = None) -> FLModel | None:
        """The next task's model (the same one again until it is answered with clear_cache); None once
        the job has ended, or when `timeout` seconds pass with no task."""
        if not self._running:
            return None
        if self._model is not None:
            return self._model
        try:
            message = self._connected().receive(timeout)
        except ChannelClosed:
            self._running = False  # the runner is gone: nothing more will come
            return None
        if message is None:
            return None
        if message.kind == "end":
            self._running = False
            return None
        if message.kind != "task":
            raise ChannelError(f"openfl_cli.client: expected a task, got a {message.kind!r} message")
        params = to_script(message.params, self.framework) if message.params is not None else None
        self._model = FLModel(
            params=params,
            params_type=message.params_type,
            current_round=message.round,
            total_rounds=message.total_rounds,
            meta=dict(message.meta),
        )
        self._task, self._answered = message, False
        return self._model

    def send(self, model: FLModel, clear_cache: bool = True) -> None:
        """Answer the task received last with `model` (its params in the script's framework type)."""
        if not isinstance(model, FLModel):
            raise TypeError(f"openfl_cli.client.send: expected an FLModel, got {type(model).__name__}")
        task = self._task
        if task is None:
            raise RuntimeError("openfl_cli.client.send: no task to answer; call receive() first")
        if self._answered:
            raise RuntimeError(f"openfl_cli.client.send: round {task.round} was answered already")
        params = from_script(model.params, self.framework) if model.params is not None else None
        params_type = model.params_type
        self._connected().send(
            Message(
                kind="result",
                seq=task.seq,
                task=task.task,
                round=task.round,
                params=params,
                params_type=params_type.value if isinstance(params_type, ParamsType) else None,
                metrics=dict(model.metrics or {}),
                meta=dict(model.meta),
            )
        )
        self._answered = True
        if clear_cache:
            self._task = self._model = None

    def current_task(self) -> str | None:
        return self._task.task if self._task is not None else None

    # --- metrics -----------------------------------------------------------------------------------
    def log(self, key: str, value: Any, data_type: Any = "scalar", **kwargs: Any) -> None:
        """Send metrics to the runner, which reports them as this site's (see `openfl_cli.client.log`)."""
        if not isinstance(key, str) or not key:
            raise ValueError(f"openfl_cli.client.log: key must be a non-empty string, got {key!r}")
        kind = str(getattr(data_type, "value", data_type)).lower()
        if kind in SCALAR_TYPES:
            metrics = {key: _number(key, value)}
        elif kind in MAPPING_TYPES:
            if not isinstance(value, Mapping):
                raise ValueError(f"openfl_cli.client.log: {kind} {key!r} needs a mapping of numbers")
            metrics = {f"{key}/{name}": _number(f"{key}/{name}", number) for name, number in value.items()}
        else:
            raise ValueError(
                f"openfl_cli.client.log: data_type must be one of {SCALAR_TYPES + MAPPING_TYPES},"
                f" got {data_type!r}"
            )
        task = self._task
        self._connected().send(
            Message(
                kind="log",
                seq=task.seq if task is not None else 0,
                round=task.round if task is not None else None,
                metrics=metrics,
                meta={"key": key, "data_type": kind, **kwargs},
            )
        )


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise ValueError(f"openfl_cli.client.log: {name!r} must be a finite number, got {value!r}")
    return float(value)


# --- which session a call acts on ---------------------------------------------------------------------

_bound = threading.local()
_process_session: ClientSession | None = None
_process_lock = threading.Lock()


@contextmanager
def bound(session: ClientSession) -> Iterator[ClientSession]:
    """Make `session` the current one for this thread (the runner does this for a script's thread)."""
    previous = getattr(_bound, "session", None)
    _bound.session = session
    try:
        yield session
    finally:
        _bound.session = previous


def current() -> ClientSession:
    """This thread's session, else the process's one from the environment; RuntimeError if neither."""
    global _process_session
    session: ClientSession | None = getattr(_bound, "session", None)
    if session is not None:
        return session
    if ENV_FD not in os.environ:
        raise RuntimeError(NO_CONTEXT)
    with _process_lock:
        if _process_session is None:
            _process_session = ClientSession.from_environment(os.environ)
        return _process_session
