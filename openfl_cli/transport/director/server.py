"""The director's gRPC server: the EnvoyLink service for envoys and the Experiments service for the
data scientists, on the transport core.

Each service has its own guard. With TLS, the handshake demands a certificate of the federation's
authority, the guard ties the claimed sender to the certificate's common name, and the role check ties
the service to the certificate's unit: an experimenter's certificate never passes as an envoy's, even
under the same name.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message

from openfl_cli.errors import UsageError
from openfl_cli.proto import director_pb2 as dpb
from openfl_cli.transport.core.budget import CallBudget
from openfl_cli.transport.core.guard import CallGuard
from openfl_cli.transport.core.handlers import Rpc, guarded_handler, parse_as, raw_bytes, request_of
from openfl_cli.transport.core.server import GrpcServer
from openfl_cli.transport.director.service import EnvoyLinkService, ExperimentsService
from openfl_cli.transport.director.state_stream import decode_state_message, read_state, state_messages
from openfl_cli.transport.limits import Limits
from openfl_cli.transport.tls import TlsMaterial, peer_unit

ENVOY_SERVICE = "openfl_cli.director.EnvoyLink"
EXPERIMENTS_SERVICE = "openfl_cli.director.Experiments"
ENVOY_ROLE = "envoy"
EXPERIMENTER_ROLE = "experimenter"
ROLE = "director"

log = logging.getLogger(__name__)
M = TypeVar("M", bound=Message)


# Calls one envoy (health, long poll, a chain's state and result, its output) or one experimenter (a
# submission, the watch stream, a result) may hold at once: no peer can take every server thread.
CALLS_PER_PEER = 6


class RoleCheck:
    """The guard's authorizer: the peer's certificate must carry `role` as its unit."""

    def __init__(self, role: str) -> None:
        self.role = role

    def check(self, context: grpc.ServicerContext, claimed_sender: str) -> None:
        unit = peer_unit(context)
        if unit != self.role:
            held = f"an {unit!r} certificate" if unit else "a certificate without a role"
            raise PermissionError(f"{claimed_sender!r} holds {held}; this service admits {self.role}s only")


class DirectorServer:
    """Serves both services on address:port; `start()` binds and returns the port (0: any free one)."""

    def __init__(
        self,
        envoys: EnvoyLinkService,
        experiments: ExperimentsService,
        address: str,
        port: int,
        tls: TlsMaterial | None,
        *,
        limits: Limits | None = None,
        max_poll_seconds: float = 30.0,
        max_workers: int = 32,
    ) -> None:
        if tls is not None and not tls.has_identity:
            raise UsageError("the director needs its certificate and private key to serve TLS")
        self.limits = limits or Limits()
        handlers = [
            _envoy_handler(envoys, _guard(tls, ENVOY_ROLE), self.limits, max_poll_seconds),
            _experiments_handler(experiments, _guard(tls, EXPERIMENTER_ROLE), self.limits),
        ]
        self._server = GrpcServer(
            handlers, address, port, tls, limits=self.limits, max_workers=max_workers, role=ROLE
        )

    @property
    def port(self) -> int:
        return self._server.port

    def start(self) -> int:
        return self._server.start()

    def wait(self, timeout: float | None = None) -> bool:
        return self._server.wait(timeout)

    def stop(self, grace: float = 2.0) -> None:
        self._server.stop(grace)


def _guard(tls: TlsMaterial | None, role: str) -> CallGuard:
    return CallGuard(check_peer_name=tls is not None, authorizer=RoleCheck(role) if tls is not None else None)


def _unary(
    method: Callable[[str, Any, grpc.ServicerContext], Any], request: type[Message], reply: type[Message]
) -> Rpc:
    return Rpc(method, parse_as(request), reply.SerializeToString)


def _envoy_handler(
    service: EnvoyLinkService, guard: CallGuard, limits: Limits, max_poll: float
) -> grpc.GenericRpcHandler:
    def health(sender: str, request: Any, context: grpc.ServicerContext) -> dpb.HealthReply:
        return dpb.HealthReply(period_seconds=service.health(sender, request_of(request)))

    def wait_work(sender: str, request: Any, context: grpc.ServicerContext) -> dpb.WorkItem:
        wait = float(request_of(request).wait_seconds)
        wait = min(max(wait, 0.0), max_poll) if math.isfinite(wait) else 0.0
        return service.wait_work(sender, wait)

    def decide(sender: str, request: Any, context: grpc.ServicerContext) -> dpb.Ack:
        service.decide(sender, request_of(request))
        return dpb.Ack()

    def chain_state(sender: str, request: Any, context: grpc.ServicerContext) -> Iterator[bytes]:
        asked = request_of(request)
        header, payload, arrays = service.chain_state(sender, asked.experiment, asked.task)
        return state_messages(header, payload, arrays, limits)

    def chain_result(sender: str, frames: Any, context: grpc.ServicerContext) -> dpb.Ack:
        service.chain_result(sender, read_state(frames, limits))
        return dpb.Ack()

    def output(sender: str, request: Any, context: grpc.ServicerContext) -> dpb.Ack:
        service.output(sender, request_of(request))
        return dpb.Ack()

    rpcs = {
        "Health": _unary(health, dpb.HealthReport, dpb.HealthReply),
        "WaitWork": _unary(wait_work, dpb.WaitWorkRequest, dpb.WorkItem),
        "Decide": _unary(decide, dpb.Decision, dpb.Ack),
        "GetChainState": Rpc(
            chain_state, parse_as(dpb.ChainStateRequest), raw_bytes, response_streaming=True
        ),
        "SendChainResult": Rpc(
            chain_result, decode_state_message, dpb.Ack.SerializeToString, request_streaming=True
        ),
        "SendOutput": _unary(output, dpb.OutputBatch, dpb.Ack),
    }
    return guarded_handler(ENVOY_SERVICE, rpcs, guard, role=ROLE, budget=CallBudget(CALLS_PER_PEER))


def _experiments_handler(
    service: ExperimentsService, guard: CallGuard, limits: Limits
) -> grpc.GenericRpcHandler:
    def list_envoys(sender: str, request: Any, context: grpc.ServicerContext) -> dpb.EnvoyList:
        request_of(request)
        return service.list_envoys(sender)

    def submit(sender: str, frames: Any, context: grpc.ServicerContext) -> dpb.Submitted:
        return service.submit(sender, read_state(frames, limits))

    def watch(sender: str, request: Any, context: grpc.ServicerContext) -> Iterator[dpb.ExperimentEvent]:
        return service.watch(sender, request_of(request).experiment)

    def result(sender: str, request: Any, context: grpc.ServicerContext) -> Iterator[bytes]:
        header, payload, arrays = service.result(sender, request_of(request).experiment)
        return state_messages(header, payload, arrays, limits)

    rpcs = {
        "ListEnvoys": _unary(list_envoys, dpb.ListEnvoysRequest, dpb.EnvoyList),
        "Submit": Rpc(submit, decode_state_message, dpb.Submitted.SerializeToString, request_streaming=True),
        "Watch": Rpc(
            watch, parse_as(dpb.WatchRequest), dpb.ExperimentEvent.SerializeToString, response_streaming=True
        ),
        "GetResult": Rpc(result, parse_as(dpb.ResultRequest), raw_bytes, response_streaming=True),
    }
    return guarded_handler(EXPERIMENTS_SERVICE, rpcs, guard, role=ROLE, budget=CallBudget(CALLS_PER_PEER))
