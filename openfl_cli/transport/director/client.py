"""The clients of the director: an envoy's link and an experimenter's, each one channel kept open.

Calls that fail in transit are retried by the `RetryPolicy`; refusals (`AggregatorRefused`, whatever
the peer) and security errors raise at once. Streams are not retried halfway: a broken upload is
sent again whole, and the director drops what it had of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import numpy as np

from openfl_cli.errors import FxError, SecurityError
from openfl_cli.proto import director_pb2 as dpb
from openfl_cli.transport.core.channel import RemotePeer, open_channel
from openfl_cli.transport.core.metadata import sender_metadata
from openfl_cli.transport.core.network import channel_options, host_port
from openfl_cli.transport.director.server import ENVOY_SERVICE, EXPERIMENTS_SERVICE
from openfl_cli.transport.director.state_stream import (
    ReceivedState,
    decode_state_message,
    read_state,
    state_messages,
)
from openfl_cli.transport.limits import Limits
from openfl_cli.transport.messages import StreamError
from openfl_cli.transport.retry import RetryPolicy
from openfl_cli.transport.tls import TlsMaterial

R = TypeVar("R")
UNARY_TIMEOUT = 60.0
POLL_MARGIN = 30.0


class _DirectorChannel:
    """One channel to the director for `service`, with the caller's name on every call."""

    def __init__(
        self,
        service: str,
        client_role: str,
        address: str,
        port: int,
        sender: str,
        tls: TlsMaterial | None,
        retry: RetryPolicy,
        limits: Limits | None,
        server_name: str | None,
    ) -> None:
        if tls is not None and not tls.has_identity:
            raise SecurityError(f"the {client_role} {sender!r} needs its certificate and key for TLS")
        self.target = host_port(address, port)
        self.sender = sender
        self.retry = retry
        self.limits = limits or Limits()
        self._service = service
        self._peer = RemotePeer("director", self.target, tls is not None, client_role=client_role)
        self._metadata = sender_metadata(sender)
        options = channel_options(self.limits, retry.interval, server_name)
        self._channel = open_channel(self.target, tls, options)

    def unary(self, name: str, reply: type[Any]) -> Callable[..., Any]:
        return self._channel.unary_unary(f"/{self._service}/{name}", _serialize, reply.FromString)

    def call(self, what: str, call: Callable[[], R]) -> R:
        return self.retry.run(lambda: self._peer.translated(what, call), what=what, peer=str(self._peer))

    def unary_call(
        self, method: Callable[..., Any], what: str, request: Any, timeout: float, *, retry: bool = True
    ) -> Any:
        def once() -> Any:
            return method(request, timeout=timeout, metadata=self._metadata)

        return self.call(what, once) if retry else self._peer.translated(what, once)

    def download(self, what: str, name: str, request: Any) -> ReceivedState:
        method = self._channel.unary_stream(f"/{self._service}/{name}", _serialize, decode_state_message)

        def fetch() -> ReceivedState:
            stream = method(request, metadata=self._metadata)
            try:
                return read_state(stream, self.limits)
            except StreamError as exc:
                stream.cancel()
                raise FxError(f"invalid state from the {self._peer}: {exc}") from None
            except BaseException:
                stream.cancel()
                raise

        return self.call(what, fetch)

    def upload(
        self,
        what: str,
        name: str,
        header: dpb.StateHeader,
        payload: bytes,
        arrays: Mapping[str, np.ndarray],
        reply: type[Any],
    ) -> Any:
        method = self._channel.stream_unary(f"/{self._service}/{name}", _identity, reply.FromString)
        return self.call(
            what,
            lambda: method(state_messages(header, payload, arrays, self.limits), metadata=self._metadata),
        )

    def events(self, name: str, request: Any, reply: type[Any]) -> Iterator[Any]:
        method = self._channel.unary_stream(f"/{self._service}/{name}", _serialize, reply.FromString)
        stream = method(request, metadata=self._metadata)
        try:
            yield from self._peer.translated(name, lambda: list(_first(stream)))
            while True:
                item = self._peer.translated(name, lambda: next(stream, None))
                if item is None:
                    return
                yield item
        finally:
            stream.cancel()

    def close(self) -> None:
        self._channel.close()


class _DirectorClient:
    """A client of one of the director's services: its channel, with the caller's name on every call."""

    service = ""
    role = ""
    default_retry = RetryPolicy(1.0, 10.0)

    def __init__(
        self,
        address: str,
        port: int,
        sender: str,
        tls: TlsMaterial | None,
        *,
        retry: RetryPolicy | None = None,
        limits: Limits | None = None,
        server_name: str | None = None,
    ) -> None:
        self._link = _DirectorChannel(
            self.service,
            self.role,
            address,
            port,
            sender,
            tls,
            retry or self.default_retry,
            limits,
            server_name,
        )
        self.target = self._link.target
        self._bind()

    def _bind(self) -> None:
        """Make the service's method stubs on the channel."""

    def close(self) -> None:
        self._link.close()


class EnvoyClient(_DirectorClient):
    """What an envoy calls on the director (retrying for a day: the director may be restarted)."""

    service = ENVOY_SERVICE
    role = "envoy"
    default_retry = RetryPolicy(1.0, 24 * 3600.0)

    def _bind(self) -> None:
        self._health = self._link.unary("Health", dpb.HealthReply)
        self._wait = self._link.unary("WaitWork", dpb.WorkItem)
        self._decide = self._link.unary("Decide", dpb.Ack)
        self._output = self._link.unary("SendOutput", dpb.Ack)

    def health(self, experiment: str = "", *, retry: bool = True) -> float:
        """`retry=False`: one try (the health thread reports again on its own schedule)."""
        request = dpb.HealthReport(experiment=experiment)
        reply = self._link.unary_call(self._health, "Health", request, UNARY_TIMEOUT, retry=retry)
        return float(reply.period_seconds)

    def wait_work(self, wait_seconds: float) -> dpb.WorkItem:
        request = dpb.WaitWorkRequest(wait_seconds=wait_seconds)
        reply: dpb.WorkItem = self._link.unary_call(
            self._wait, "WaitWork", request, wait_seconds + POLL_MARGIN
        )
        return reply

    def decide(self, decision: dpb.Decision) -> None:
        self._link.unary_call(self._decide, "Decide", decision, UNARY_TIMEOUT)

    def chain_state(self, experiment: str, task: str) -> ReceivedState:
        request = dpb.ChainStateRequest(experiment=experiment, task=task)
        return self._link.download("GetChainState", "GetChainState", request)

    def send_chain_result(
        self, result: dpb.ChainResultHeader, payload: bytes, arrays: Mapping[str, np.ndarray]
    ) -> None:
        header = dpb.StateHeader(result=result)
        self._link.upload("SendChainResult", "SendChainResult", header, payload, arrays, dpb.Ack)

    def send_output(self, batch: dpb.OutputBatch) -> None:
        self._link.unary_call(self._output, "SendOutput", batch, UNARY_TIMEOUT)


class ExperimenterClient(_DirectorClient):
    """What a data scientist's FederatedRuntime (and `fx director envoys`) calls on the director."""

    service = EXPERIMENTS_SERVICE
    role = "experimenter"

    def _bind(self) -> None:
        self._list = self._link.unary("ListEnvoys", dpb.EnvoyList)

    def list_envoys(self) -> dpb.EnvoyList:
        reply: dpb.EnvoyList = self._link.unary_call(
            self._list, "ListEnvoys", dpb.ListEnvoysRequest(), UNARY_TIMEOUT
        )
        return reply

    def submit(
        self, submission: dpb.SubmissionHeader, payload: bytes, arrays: Mapping[str, np.ndarray]
    ) -> dpb.Submitted:
        header = dpb.StateHeader(submission=submission)
        reply: dpb.Submitted = self._link.upload("Submit", "Submit", header, payload, arrays, dpb.Submitted)
        return reply

    def watch(self, experiment: str) -> Iterator[dpb.ExperimentEvent]:
        return self._link.events("Watch", dpb.WatchRequest(experiment=experiment), dpb.ExperimentEvent)

    def result(self, experiment: str) -> ReceivedState:
        return self._link.download("GetResult", "GetResult", dpb.ResultRequest(experiment=experiment))


def _first(stream: Iterator[Any]) -> Iterator[Any]:
    """The stream's first item (or none): where a refusal of the call itself shows."""
    item = next(stream, None)
    if item is not None:
        yield item


def _serialize(message: Any) -> bytes:
    data: bytes = message.SerializeToString()
    return data


def _identity(raw: bytes) -> bytes:
    return raw
