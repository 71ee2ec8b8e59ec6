"""The aggregator's gRPC server: authenticates every call, then drives a `FederationService`."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import TypeVar

import grpc
from google.protobuf.message import DecodeError, Message

from openfl_cli.errors import FxError, UsageError
from openfl_cli.proto import federation_pb2 as pb
from openfl_cli.transport.assembly import (
    Assembler,
    StreamError,
    check_against_model,
    raw_entries,
    tensor_infos,
)
from openfl_cli.transport.auth import Authorizer, CallGuard, Denied
from openfl_cli.transport.chunking import chunk_messages
from openfl_cli.transport.convert import assignment_to_proto, ping_to_proto
from openfl_cli.transport.frames import ChunkFrame, HeaderFrame, Malformed, decode_message, encode_header
from openfl_cli.transport.limits import Limits
from openfl_cli.transport.messages import RefusalCode, Refused
from openfl_cli.transport.service import FederationService, ResultSink
from openfl_cli.transport.status import abort
from openfl_cli.transport.tls import TlsPaths, server_credentials

SERVICE_NAME = "openfl_cli.federation.Federation"

# A dead collaborator's connection is noticed within KEEPALIVE_TIME + KEEPALIVE_TIMEOUT.
KEEPALIVE_TIME_MS = 30_000
KEEPALIVE_TIMEOUT_MS = 10_000
CLIENT_MIN_PING_INTERVAL_MS = 10_000

log = logging.getLogger(__name__)
M = TypeVar("M", bound=Message)
R = TypeVar("R")


def host_port(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address and not address.startswith("[") else f"{address}:{port}"


class AggregatorServer:
    """Serves `service` on address:port. `start()` binds and returns the port (useful with port 0)."""

    def __init__(
        self,
        service: FederationService,
        address: str = "0.0.0.0",
        port: int = 0,
        tls: TlsPaths | None = None,
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
                "the aggregator needs its TLS files (cert chain, certificate, key) when use_tls is on"
            )
        if not use_tls or not require_client_auth:
            log.warning(
                "collaborators are not authenticated by certificate (use_tls=%s, require_client_auth=%s)",
                use_tls,
                require_client_auth,
            )
        self.address = address
        self._requested_port = port
        self._tls = tls
        self._use_tls = use_tls
        self._require_client_auth = require_client_auth
        self.limits = limits or Limits()
        guard = CallGuard(
            lambda: service.plan_hash,
            check_peer_name=use_tls and require_client_auth,
            authorizer=authorizer,
        )
        self._servicer = _Servicer(service, guard, self.limits, max_poll_seconds)
        # Each collaborator may hold a long poll while another of its calls (or a stream) runs.
        self._workers = max(8, 2 * expected_collaborators + 4)
        self._server: grpc.Server | None = None
        self.port = 0

    def start(self) -> int:
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="fx-rpc"),
            options=self._options(),
        )
        server.add_generic_rpc_handlers((self._servicer.handler(),))
        target = host_port(self.address, self._requested_port)
        try:
            if self._use_tls:
                assert self._tls is not None
                port = server.add_secure_port(
                    target, server_credentials(self._tls, self._require_client_auth)
                )
            else:
                port = server.add_insecure_port(target)
        except RuntimeError as exc:
            raise FxError(f"cannot listen on {target}: {exc}") from None
        if port == 0:
            raise FxError(f"cannot listen on {target} (address in use or not local)")
        server.start()
        self._server, self.port = server, port
        log.info("aggregator listening on %s", host_port(self.address, port))
        return port

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server stops (True) or `timeout` passes (False)."""
        if self._server is None:
            return True
        return self._server.wait_for_termination(timeout)

    def stop(self, grace: float = 5.0) -> None:
        """Refuse new calls, let running ones finish for `grace` seconds, then cancel them."""
        if self._server is not None:
            self._server.stop(grace).wait()
            self._server = None

    def __enter__(self) -> AggregatorServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop(grace=1.0)

    def _options(self) -> list[tuple[str, int]]:
        return [
            *self.limits.grpc_options(),
            ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS),
            ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_recv_ping_interval_without_data_ms", CLIENT_MIN_PING_INTERVAL_MS),
            ("grpc.http2.max_ping_strikes", 0),
            # a second aggregator on the same port must fail, not share it
            ("grpc.so_reuseport", 0),
        ]


def _parser(message_type: type[M]) -> Callable[[bytes], M | Malformed]:
    def parse(raw: bytes) -> M | Malformed:
        try:
            return message_type.FromString(raw)
        except DecodeError as exc:
            return Malformed(f"malformed {message_type.__name__}: {exc}")

    return parse


def _request(message: M | Malformed) -> M:
    if isinstance(message, Malformed):
        raise StreamError(message.reason)
    return message


class _Servicer:
    def __init__(self, service: FederationService, guard: CallGuard, limits: Limits, max_poll: float) -> None:
        self._service = service
        self._guard = guard
        self._limits = limits
        self._max_poll = max_poll

    def handler(self) -> grpc.GenericRpcHandler:
        def identity(raw: bytes) -> bytes:
            return raw

        return grpc.method_handlers_generic_handler(
            SERVICE_NAME,
            {
                "Ping": grpc.unary_unary_rpc_method_handler(
                    self.ping, _parser(pb.PingRequest), pb.PingResponse.SerializeToString
                ),
                "GetTasks": grpc.unary_unary_rpc_method_handler(
                    self.get_tasks, _parser(pb.GetTasksRequest), pb.TaskAssignmentProto.SerializeToString
                ),
                "GetModel": grpc.unary_stream_rpc_method_handler(
                    self.get_model, _parser(pb.GetModelRequest), identity
                ),
                "SendResult": grpc.stream_unary_rpc_method_handler(
                    self.send_result,
                    lambda raw: decode_message(raw, pb.ResultHeader),
                    pb.SendResultResponse.SerializeToString,
                ),
            },
        )

    # -- RPCs ------------------------------------------------------------------------------------------

    def ping(self, request: pb.PingRequest | Malformed, context: grpc.ServicerContext) -> pb.PingResponse:
        def run(sender: str) -> pb.PingResponse:
            _request(request)
            return ping_to_proto(self._service.ping(sender))

        return self._guarded(context, run)

    def get_tasks(
        self, request: pb.GetTasksRequest | Malformed, context: grpc.ServicerContext
    ) -> pb.TaskAssignmentProto:
        def run(sender: str) -> pb.TaskAssignmentProto:
            wait = _request(request).wait_seconds
            wait = min(max(wait, 0.0), self._max_poll) if math.isfinite(wait) else 0.0
            return assignment_to_proto(self._service.get_tasks(sender, wait))

        return self._guarded(context, run)

    def get_model(
        self, request: pb.GetModelRequest | Malformed, context: grpc.ServicerContext
    ) -> Iterator[bytes]:
        def prepare(sender: str) -> tuple[bytes, Iterator[bytes]]:
            round_number = _request(request).round_number
            headers, payloads = raw_entries(self._service.model_for(sender, round_number))
            header = encode_header(pb.ModelHeader(round_number=round_number, tensors=headers))
            if len(header) > self._limits.max_message_bytes:
                raise FxError(f"the model header ({len(header)} bytes) exceeds max_message_bytes")
            return header, chunk_messages(payloads, self._limits.chunk_bytes)

        header, chunks = self._guarded(context, prepare)
        yield header
        yield from chunks

    def send_result(
        self,
        requests: Iterator[HeaderFrame[pb.ResultHeader] | ChunkFrame | Malformed],
        context: grpc.ServicerContext,
    ) -> pb.SendResultResponse:
        return self._guarded(context, lambda sender: self._receive_result(sender, requests, context))

    # -- helpers ---------------------------------------------------------------------------------------

    def _receive_result(
        self,
        sender: str,
        requests: Iterator[HeaderFrame[pb.ResultHeader] | ChunkFrame | Malformed],
        context: grpc.ServicerContext,
    ) -> pb.SendResultResponse:
        first = next(requests, None)
        if isinstance(first, Malformed):
            raise StreamError(first.reason)
        if not isinstance(first, HeaderFrame):
            raise StreamError("a result stream must start with its header")
        header = first.header
        self._check_result_header(header)
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
            _abort_sink(sink, exc, context)
            raise
        log.debug(
            "result %r of %s, round %d: %d bytes",
            header.task_name,
            sender,
            header.round_number,
            assembler.received,
        )
        return pb.SendResultResponse(received_bytes=assembler.received)

    def _check_result_header(self, header: pb.ResultHeader) -> None:
        limits = self._limits
        if header.round_number < 0:
            raise StreamError(f"negative round number {header.round_number}")
        if not header.task_name or len(header.task_name) > limits.max_name_chars:
            raise StreamError("the result names no task (or a too long one)")
        if len(header.metrics) > limits.max_metrics:
            raise StreamError(f"more than {limits.max_metrics} metrics")
        if any(not name or len(name) > limits.max_name_chars for name in header.metrics):
            raise StreamError(f"metric names must have 1..{limits.max_name_chars} characters")

    def _guarded(self, context: grpc.ServicerContext, run: Callable[[str], R]) -> R:
        """Admit the caller, run, and turn every failure into a status the collaborator can print."""
        try:
            return run(self._guard.admit(context))
        except Denied as denied:
            log.warning("refused %s: %s", context.peer(), denied.refusal)
            refusal, status = denied.refusal, denied.status
        except Refused as refused:
            refusal, status = refused, None
        except StreamError as exc:
            log.warning("invalid input from %s: %s", context.peer(), exc)
            refusal, status = Refused(RefusalCode.INVALID, str(exc)), None
        except grpc.RpcError:
            raise  # the client went away mid-stream: nothing to answer
        except Exception:
            log.exception("internal error while serving %s", context.peer())
            context.abort(grpc.StatusCode.INTERNAL, "internal error on the aggregator (see its log)")
        abort(context, refusal, status)
        raise AssertionError("unreachable: abort raises")


def _abort_sink(sink: ResultSink, exc: BaseException, context: grpc.ServicerContext) -> None:
    reason = str(exc) if isinstance(exc, (Refused, StreamError)) else f"stream broke ({type(exc).__name__})"
    try:
        sink.abort(reason)
    except Exception:
        log.exception("aborting a result from %s failed", context.peer())
