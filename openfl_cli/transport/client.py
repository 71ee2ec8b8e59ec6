"""The collaborator's side: one channel to the aggregator, kept open, with bounded reconnection.

Transport failures (aggregator down, connection broken mid-stream) are retried every
`reconnect_interval` seconds until `reconnect_timeout` has passed since the first failure, then raise
FxError. Refusals (not authorized, plan mismatch, late, duplicate, invalid) raise `AggregatorRefused` at once.
Retrying a whole upload is safe: the aggregator aborts a broken result, and answers the retry of one it
already has (its reply was lost) with a `duplicate` refusal, which the collaborator takes as delivered.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TypeVar

import grpc
import numpy as np

from openfl_cli.errors import FxError, SecurityError
from openfl_cli.proto import federation_pb2 as pb
from openfl_cli.tensors.pipelines import CompressionPipeline, NoCompressionPipeline
from openfl_cli.transport.assembly import Assembler, StreamError, encoded_header, tensor_infos
from openfl_cli.transport.auth import call_metadata
from openfl_cli.transport.chunking import chunk_messages
from openfl_cli.transport.convert import assignment_from_proto, ping_from_proto
from openfl_cli.transport.frames import HeaderFrame, Malformed, decode_message, encode_header
from openfl_cli.transport.limits import Limits
from openfl_cli.transport.messages import PingReply, SendReport, TaskAssignment
from openfl_cli.transport.server import SERVICE_NAME, host_port
from openfl_cli.transport.status import refusal_from
from openfl_cli.transport.tls import TlsPaths, client_credentials

log = logging.getLogger(__name__)
R = TypeVar("R")

# Failures of the connection rather than answers of the aggregator.
RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.ABORTED,
    }
)
# Marks of a certificate check that failed on our side (wrong CA, wrong server name): retrying cannot
# help. When the aggregator rejects OUR certificate, TLS 1.3 only shows us a closed socket, which looks
# like any network failure: that case is retried and the final error says what it may be.
_TLS_FAILURE_MARKS = ("certificate", "verification check failed", "alert")

_HINT_REJECTED = " (if the aggregator is running, it may have rejected this collaborator's certificate)"

UNARY_TIMEOUT = 60.0
POLL_MARGIN = 30.0  # how much longer than the long poll itself a GetTasks call may take
KEEPALIVE_TIME_MS = 20_000
KEEPALIVE_TIMEOUT_MS = 10_000


class AggregatorClient:
    def __init__(
        self,
        address: str,
        port: int,
        collaborator: str,
        plan_hash: str,
        tls: TlsPaths | None = None,
        *,
        use_tls: bool = True,
        require_client_auth: bool = True,
        reconnect_interval: float = 5.0,
        reconnect_timeout: float = 600.0,
        pipeline: CompressionPipeline | None = None,
        limits: Limits | None = None,
        server_name: str | None = None,
    ) -> None:
        """`server_name` is the name the aggregator's certificate must carry (default: `address`, the
        plan's agg_addr); set it only when connecting through another address."""
        if reconnect_interval <= 0 or reconnect_timeout <= 0:
            raise ValueError("reconnect_interval and reconnect_timeout must be > 0")
        self.target = host_port(address, port)
        self.collaborator = collaborator
        self.reconnect_interval = float(reconnect_interval)
        self.reconnect_timeout = float(reconnect_timeout)
        self.pipeline = pipeline or NoCompressionPipeline()
        self.limits = limits or Limits()
        self._metadata = call_metadata(collaborator, plan_hash)
        self._use_tls = use_tls
        options = self._options(server_name if server_name and server_name != address else None)
        if use_tls:
            if tls is None:
                raise SecurityError("TLS is on but no certificate files were given to the collaborator")
            credentials = client_credentials(tls, with_client_cert=require_client_auth)
            self._channel = grpc.secure_channel(self.target, credentials, options=options)
        else:
            self._channel = grpc.insecure_channel(self.target, options=options)
        method = f"/{SERVICE_NAME}/"
        identity: Callable[[bytes], bytes] = _identity
        self._ping = self._channel.unary_unary(
            method + "Ping", pb.PingRequest.SerializeToString, pb.PingResponse.FromString
        )
        self._get_tasks = self._channel.unary_unary(
            method + "GetTasks", pb.GetTasksRequest.SerializeToString, pb.TaskAssignmentProto.FromString
        )
        self._get_model = self._channel.unary_stream(
            method + "GetModel",
            pb.GetModelRequest.SerializeToString,
            lambda raw: decode_message(raw, pb.ModelHeader),
        )
        self._send_result = self._channel.stream_unary(
            method + "SendResult", identity, pb.SendResultResponse.FromString
        )

    # -- API -------------------------------------------------------------------------------------------

    def ping(self) -> PingReply:
        reply = self._retrying(
            "Ping", lambda: self._ping(pb.PingRequest(), timeout=UNARY_TIMEOUT, metadata=self._metadata)
        )
        return ping_from_proto(reply)

    def get_tasks(self, wait_seconds: float) -> TaskAssignment:
        """Long poll: returns as soon as the aggregator has work for us (or after `wait_seconds`)."""
        wait = max(0.0, float(wait_seconds))
        request = pb.GetTasksRequest(wait_seconds=wait)
        reply = self._retrying(
            "GetTasks",
            lambda: self._get_tasks(request, timeout=wait + POLL_MARGIN, metadata=self._metadata),
        )
        return self._checked(assignment_from_proto, reply)

    def get_model(self, round_number: int) -> dict[str, np.ndarray]:
        """The global model of `round_number`, each tensor in its own buffer (writable arrays)."""
        return self._retrying("GetModel", lambda: self._download(round_number))

    def send_result(
        self,
        round_number: int,
        task_name: str,
        metrics: Mapping[str, float],
        sample_count: int,
        tensors: Mapping[str, np.ndarray],
    ) -> SendReport:
        """Upload one task result, each tensor encoded with the plan's compression pipeline."""
        encoded = [(name, self.pipeline.encode(np.asarray(array))) for name, array in tensors.items()]
        header = encode_header(
            pb.ResultHeader(
                round_number=round_number,
                task_name=task_name,
                metrics={name: float(value) for name, value in metrics.items()},
                sample_count=sample_count,
                tensors=[encoded_header(name, item) for name, item in encoded],
            )
        )
        if len(header) > self.limits.max_message_bytes:
            raise FxError(f"result header of {len(header)} bytes exceeds max_message_bytes")
        payloads = [memoryview(item.payload) for _, item in encoded]

        def messages() -> Iterator[bytes]:
            yield header
            yield from chunk_messages(payloads, self.limits.chunk_bytes)

        self._retrying("SendResult", lambda: self._send_result(messages(), metadata=self._metadata))
        raw = sum(item.raw_nbytes for _, item in encoded)
        sent = len(header) + sum(item.nbytes for _, item in encoded)
        return SendReport(raw_bytes=raw, sent_bytes=sent)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> AggregatorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers ---------------------------------------------------------------------------------------

    def _download(self, round_number: int) -> dict[str, np.ndarray]:
        tensors: dict[str, np.ndarray] = {}
        stream = self._get_model(pb.GetModelRequest(round_number=round_number), metadata=self._metadata)
        try:
            first = next(stream, None)
            if isinstance(first, Malformed):
                raise StreamError(first.reason)
            if not isinstance(first, HeaderFrame):
                raise StreamError("the model stream does not start with its header")
            if first.header.round_number != round_number:
                raise StreamError(f"asked for round {round_number}, got round {first.header.round_number}")
            infos = tensor_infos(first.header.tensors, self.limits, self.limits.max_model_bytes)
            assembler = Assembler(infos, tensors.__setitem__)
            for frame in stream:
                if isinstance(frame, Malformed):
                    raise StreamError(frame.reason)
                if isinstance(frame, HeaderFrame):
                    raise StreamError("the model stream holds one header")
                assembler.feed(frame)
            assembler.finish()
        except StreamError as exc:
            stream.cancel()
            raise FxError(f"invalid model from the aggregator at {self.target}: {exc}") from None
        except BaseException:
            stream.cancel()
            raise
        return tensors

    def _retrying(self, what: str, call: Callable[[], R]) -> R:
        first_failure: float | None = None
        while True:
            try:
                return call()
            except grpc.RpcError as error:
                refusal = refusal_from(error)
                if refusal is not None:
                    raise refusal from None
                details = _details(error)
                code = error.code() if hasattr(error, "code") else None
                if any(mark in details.lower() for mark in _TLS_FAILURE_MARKS):
                    raise SecurityError(
                        f"TLS connection to the aggregator at {self.target} refused: {details}"
                    ) from None
                if code not in RETRYABLE:
                    raise FxError(f"{what} failed at the aggregator {self.target}: {details}") from None
                now = time.monotonic()
                first_failure = now if first_failure is None else first_failure
                elapsed = now - first_failure
                if elapsed >= self.reconnect_timeout:
                    hint = _HINT_REJECTED if self._use_tls and "socket closed" in details.lower() else ""
                    raise FxError(
                        f"aggregator at {self.target} unreachable for {elapsed:.0f} s: {details}{hint}"
                    ) from None
                log.warning(
                    "%s: aggregator at %s unavailable (%s); retrying in %.1f s",
                    what,
                    self.target,
                    details,
                    self.reconnect_interval,
                )
                time.sleep(min(self.reconnect_interval, self.reconnect_timeout - elapsed))

    @staticmethod
    def _checked(
        convert: Callable[[pb.TaskAssignmentProto], TaskAssignment], reply: pb.TaskAssignmentProto
    ) -> TaskAssignment:
        try:
            return convert(reply)
        except StreamError as exc:
            raise FxError(f"invalid answer from the aggregator: {exc}") from None

    def _options(self, server_name: str | None) -> list[tuple[str, int | str]]:
        # The channel's own reconnection attempts stay frequent so that a retry finds it connected.
        backoff_ms = int(1000 * max(0.1, min(self.reconnect_interval, 1.0)))
        options: list[tuple[str, int | str]] = [
            *self.limits.grpc_options(),
            ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS),
            ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.initial_reconnect_backoff_ms", backoff_ms),
            ("grpc.min_reconnect_backoff_ms", backoff_ms),
            ("grpc.max_reconnect_backoff_ms", backoff_ms),
            ("grpc.enable_retries", 0),  # retries are ours: bounded, and never after a refusal
        ]
        if server_name:
            options.append(("grpc.ssl_target_name_override", server_name))
        return options


def _identity(raw: bytes) -> bytes:
    return raw


def _details(error: grpc.RpcError) -> str:
    details = error.details() if hasattr(error, "details") else None
    return details or str(error)
