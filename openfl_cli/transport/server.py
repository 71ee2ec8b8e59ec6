"""The aggregator's gRPC server: the federation service (Ping, GetTasks, GetModel, SendResult) on the
transport core. Every call is admitted by the core's guard (certificate name == sender, authorizer,
plan hash) before it reaches the `FederationService`."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from itertools import chain
from typing import TypeVar

import grpc
from google.protobuf.message import Message

from openfl_cli.errors import FxError, UsageError
from openfl_cli.proto import federation_pb2 as pb
from openfl_cli.transport.assembly import Assembler, check_against_model, raw_entries, tensor_infos
from openfl_cli.transport.auth import PlanHashCheck
from openfl_cli.transport.chunking import chunk_messages
from openfl_cli.transport.convert import assignment_to_proto, failure_from_proto, ping_to_proto
from openfl_cli.transport.core.budget import CallBudget
from openfl_cli.transport.core.guard import Authorizer, CallGuard
from openfl_cli.transport.core.handlers import Rpc, guarded_handler, parse_as, raw_bytes, request_of
from openfl_cli.transport.core.network import host_port
from openfl_cli.transport.core.server import GrpcServer
from openfl_cli.transport.frames import ChunkFrame, HeaderFrame, Malformed, decode_message, encode_header
from openfl_cli.transport.limits import Limits
from openfl_cli.transport.messages import StreamError
from openfl_cli.transport.result_checks import check_result_fields
from openfl_cli.transport.service import FederationService, abort_sink
from openfl_cli.transport.tls import TlsMaterial

SERVICE_NAME = "openfl_cli.federation.Federation"
ROLE = "aggregator"

__all__ = ["SERVICE_NAME", "AggregatorServer", "federation_handler", "host_port"]

log = logging.getLogger(__name__)
M = TypeVar("M", bound=Message)
# Calls one collaborator may hold at once: its long poll, an upload in the background, a download or a
# failure report, and one to spare (a poll its client gave up on, still ending on the server).
CALLS_PER_COLLABORATOR = 4
ResultFrames = Iterator[HeaderFrame[pb.ResultHeader] | ChunkFrame | Malformed]


class AggregatorServer:
    """Serves `service` on address:port. `start()` binds and returns the port (useful with port 0)."""

    def __init__(
        self,
        service: FederationService,
        address: str = "0.0.0.0",
        port: int = 0,
        tls: TlsMaterial | None = None,
        *,
        use_tls: bool = True,
        require_client_auth: bool = True,
        authorizer: Authorizer | None = None,
        limits: Limits | None = None,
        expected_collaborators: int = 8,
        max_poll_seconds: float = 60.0,
    ) -> None:
        if use_tls and tls is None:
            raise UsageError(
                "the aggregator needs its TLS material (cert chain, certificate, key) when use_tls is on"
            )
        if not use_tls or not require_client_auth:
            log.warning(
                "collaborators are not authenticated by certificate (use_tls=%s, require_client_auth=%s)",
                use_tls,
                require_client_auth,
            )
        self.address = address
        self.limits = limits or Limits()
        guard = CallGuard(
            check_peer_name=use_tls and require_client_auth,
            authorizer=authorizer,
            checks=(PlanHashCheck(lambda: service.plan_hash),),
        )
        budget = CallBudget(CALLS_PER_COLLABORATOR)
        self._server = GrpcServer(
            [federation_handler(service, guard, self.limits, max_poll_seconds, budget)],
            address,
            port,
            tls if use_tls else None,
            require_client_auth=require_client_auth,
            limits=self.limits,
            # every collaborator's whole budget at once, and a margin for calls refused on admission
            max_workers=CALLS_PER_COLLABORATOR * max(1, expected_collaborators) + 4,
            role=ROLE,
        )

    @property
    def port(self) -> int:
        return self._server.port

    def start(self) -> int:
        return self._server.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server stops (True) or `timeout` passes (False)."""
        return self._server.wait(timeout)

    def stop(self, grace: float = 5.0) -> None:
        """Refuse new calls, let running ones finish for `grace` seconds, then cancel them."""
        self._server.stop(grace)

    def __enter__(self) -> AggregatorServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop(grace=1.0)


def federation_handler(
    service: FederationService,
    guard: CallGuard,
    limits: Limits,
    max_poll_seconds: float,
    budget: CallBudget | None = None,
) -> grpc.GenericRpcHandler:
    """The federation service's methods behind `guard`, each sender's calls bounded by `budget`."""
    methods = _FederationMethods(service, limits, max_poll_seconds)
    rpcs = {
        "Ping": Rpc(methods.ping, parse_as(pb.PingRequest), pb.PingResponse.SerializeToString),
        "GetTasks": Rpc(
            methods.get_tasks, parse_as(pb.GetTasksRequest), pb.TaskAssignmentProto.SerializeToString
        ),
        "GetModel": Rpc(methods.get_model, parse_as(pb.GetModelRequest), raw_bytes, response_streaming=True),
        "SendResult": Rpc(
            methods.send_result,
            lambda raw: decode_message(raw, pb.ResultHeader),
            pb.SendResultResponse.SerializeToString,
            request_streaming=True,
        ),
        "ReportFailure": Rpc(
            methods.report_failure, parse_as(pb.TaskFailure), pb.TaskFailureResponse.SerializeToString
        ),
    }
    return guarded_handler(SERVICE_NAME, rpcs, guard, role=ROLE, budget=budget)


class _FederationMethods:
    """The RPCs; each receives the sender the guard admitted."""

    def __init__(self, service: FederationService, limits: Limits, max_poll: float) -> None:
        self._service = service
        self._limits = limits
        self._max_poll = max_poll

    def ping(
        self, sender: str, request: pb.PingRequest | Malformed, context: grpc.ServicerContext
    ) -> pb.PingResponse:
        request_of(request)
        return ping_to_proto(self._service.ping(sender))

    def get_tasks(
        self, sender: str, request: pb.GetTasksRequest | Malformed, context: grpc.ServicerContext
    ) -> pb.TaskAssignmentProto:
        wait: float = request_of(request).wait_seconds
        wait = min(max(wait, 0.0), self._max_poll) if math.isfinite(wait) else 0.0
        return assignment_to_proto(self._service.get_tasks(sender, wait))

    def report_failure(
        self, sender: str, request: pb.TaskFailure | Malformed, context: grpc.ServicerContext
    ) -> pb.TaskFailureResponse:
        failure = failure_from_proto(request_of(request))
        check_result_fields(failure.round_number, failure.task_name, {}, self._limits)
        self._service.report_failure(sender, failure)
        return pb.TaskFailureResponse()

    def get_model(
        self, sender: str, request: pb.GetModelRequest | Malformed, context: grpc.ServicerContext
    ) -> Iterator[bytes]:
        round_number: int = request_of(request).round_number
        headers, payloads = raw_entries(self._service.model_for(sender, round_number))
        header = encode_header(pb.ModelHeader(round_number=round_number, tensors=headers))
        if len(header) > self._limits.max_message_bytes:
            raise FxError(f"the model header ({len(header)} bytes) exceeds max_message_bytes")
        return chain((header,), chunk_messages(payloads, self._limits.chunk_bytes))

    def send_result(
        self, sender: str, requests: ResultFrames, context: grpc.ServicerContext
    ) -> pb.SendResultResponse:
        first = next(requests, None)
        if isinstance(first, Malformed):
            raise StreamError(first.reason)
        if not isinstance(first, HeaderFrame):
            raise StreamError("a result stream must start with its header")
        header = first.header
        check_result_fields(header.round_number, header.task_name, header.metrics, self._limits)
        model = self._service.model_for(sender, header.round_number)
        infos = tensor_infos(header.tensors, self._limits, max_total=None)
        check_against_model(infos, model)
        sink = self._service.open_result(
            sender,
            header.round_number,
            header.task_name,
            dict(header.metrics),
            header.sample_count,
            [info.name for info in infos],
        )
        assembler = Assembler(infos, sink.add, reuse_buffer=True, destination=sink.destination)
        try:
            for frame in requests:
                if isinstance(frame, Malformed):
                    raise StreamError(frame.reason)
                if not isinstance(frame, ChunkFrame):
                    raise StreamError("a result stream holds one header")
                assembler.feed(frame)
            assembler.finish()
            sink.commit()
        except BaseException as exc:
            abort_sink(sink, exc, context.peer())
            raise
        log.debug(
            "result %r of %s, round %d: %d bytes",
            header.task_name,
            sender,
            header.round_number,
            assembler.received,
        )
        return pb.SendResultResponse(received_bytes=assembler.received)
