"""The collaborator's side: one channel to the aggregator, kept open, with bounded reconnection.

Transport failures (aggregator down, connection broken mid-stream) are retried by the `RetryPolicy`
(every `reconnect_interval` seconds until `reconnect_timeout` has passed since the first failure, then
FxError). Refusals (not authorized, plan mismatch, late, duplicate, invalid) raise `AggregatorRefused`
at once. Retrying a whole upload is safe: the aggregator aborts a broken result, and answers the retry
of one it already has (its reply was lost) with a `duplicate` refusal, which the collaborator takes as
delivered.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import TypeVar

import numpy as np

from openfl_cli.errors import FxError, SecurityError
from openfl_cli.proto import federation_pb2 as pb
from openfl_cli.tensors.pipelines import NoCompressionPipeline, TensorEncoder
from openfl_cli.transport.assembly import Assembler, encoded_header, tensor_infos
from openfl_cli.transport.auth import call_metadata
from openfl_cli.transport.chunking import chunk_messages
from openfl_cli.transport.convert import assignment_from_proto, failure_to_proto, ping_from_proto
from openfl_cli.transport.core.channel import RemotePeer, open_channel
from openfl_cli.transport.core.network import channel_options, host_port
from openfl_cli.transport.frames import HeaderFrame, Malformed, decode_message, encode_header
from openfl_cli.transport.limits import Limits
from openfl_cli.transport.messages import PingReply, SendReport, StreamError, TaskAssignment, TaskFailure
from openfl_cli.transport.retry import RetryPolicy
from openfl_cli.transport.server import SERVICE_NAME
from openfl_cli.transport.tls import TlsMaterial

log = logging.getLogger(__name__)
R = TypeVar("R")

UNARY_TIMEOUT = 60.0
POLL_MARGIN = 30.0  # how much longer than the long poll itself a GetTasks call may take


class AggregatorClient:
    def __init__(
        self,
        address: str,
        port: int,
        collaborator: str,
        plan_hash: str,
        tls: TlsMaterial | None = None,
        *,
        use_tls: bool = True,
        require_client_auth: bool = True,
        reconnect_interval: float = 5.0,
        reconnect_timeout: float = 600.0,
        retry: RetryPolicy | None = None,
        pipeline: TensorEncoder | None = None,
        limits: Limits | None = None,
        server_name: str | None = None,
    ) -> None:
        """`retry`, when given, replaces `reconnect_interval` and `reconnect_timeout`. Without
        `require_client_auth` the collaborator presents no certificate. `server_name` is the name the
        aggregator's certificate must carry (default: `address`, the plan's agg_addr); set it only when
        connecting through another address."""
        self.retry = retry or RetryPolicy(reconnect_interval, reconnect_timeout)
        self.target = host_port(address, port)
        self.collaborator = collaborator
        self.pipeline = pipeline or NoCompressionPipeline()
        self.limits = limits or Limits()
        self._peer = RemotePeer("aggregator", self.target, use_tls, client_role="collaborator")
        self._metadata = call_metadata(collaborator, plan_hash)
        if use_tls and tls is None:
            raise SecurityError("TLS is on but no TLS material was given to the collaborator")
        options = channel_options(
            self.limits, self.retry.interval, server_name if server_name and server_name != address else None
        )
        self._channel = open_channel(
            self.target, tls if use_tls else None, options, with_client_cert=require_client_auth
        )
        method = f"/{SERVICE_NAME}/"
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
            method + "SendResult", _identity, pb.SendResultResponse.FromString
        )
        self._report_failure = self._channel.unary_unary(
            method + "ReportFailure", pb.TaskFailure.SerializeToString, pb.TaskFailureResponse.FromString
        )

    @property
    def reconnect_interval(self) -> float:
        return self.retry.interval

    @property
    def reconnect_timeout(self) -> float:
        return self.retry.timeout

    # -- API -------------------------------------------------------------------------------------------

    def ping(self) -> PingReply:
        reply = self._call(
            "Ping", lambda: self._ping(pb.PingRequest(), timeout=UNARY_TIMEOUT, metadata=self._metadata)
        )
        return ping_from_proto(reply)

    def get_tasks(self, wait_seconds: float) -> TaskAssignment:
        """Long poll: returns as soon as the aggregator has work for us (or after `wait_seconds`)."""
        wait = max(0.0, float(wait_seconds))
        request = pb.GetTasksRequest(wait_seconds=wait)
        reply = self._call(
            "GetTasks",
            lambda: self._get_tasks(request, timeout=wait + POLL_MARGIN, metadata=self._metadata),
        )
        try:
            return assignment_from_proto(reply)
        except StreamError as exc:
            raise FxError(f"invalid answer from the aggregator: {exc}") from None

    def get_model(self, round_number: int) -> dict[str, np.ndarray]:
        """The global model of `round_number`, each tensor in its own buffer (writable arrays)."""
        return self._call("GetModel", lambda: self._download(round_number))

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

        self._call("SendResult", lambda: self._send_result(messages(), metadata=self._metadata))
        raw = sum(item.raw_nbytes for _, item in encoded)
        sent = len(header) + sum(item.nbytes for _, item in encoded)
        return SendReport(raw_bytes=raw, sent_bytes=sent)

    def report_failure(self, failure: TaskFailure) -> None:
        """Tell the aggregator that a task of the round failed, and why."""
        request = failure_to_proto(failure)
        self._call(
            "ReportFailure",
            lambda: self._report_failure(request, timeout=UNARY_TIMEOUT, metadata=self._metadata),
        )

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> AggregatorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers ---------------------------------------------------------------------------------------

    def _call(self, what: str, call: Callable[[], R]) -> R:
        return self.retry.run(lambda: self._peer.translated(what, call), what=what, peer=str(self._peer))

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


def _identity(raw: bytes) -> bytes:
    return raw
