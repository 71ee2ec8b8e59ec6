"""Every call is authenticated and every byte validated; refusals are clear and never retried."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import numpy as np
import pytest

from openfl_cli.errors import FxError
from openfl_cli.proto import federation_pb2 as pb
from openfl_cli.transport.assembly import raw_entries
from openfl_cli.transport.auth import call_metadata
from openfl_cli.transport.chunking import chunk_messages
from openfl_cli.transport.frames import encode_chunk, encode_header
from openfl_cli.transport.limits import Limits
from openfl_cli.transport.messages import RefusalCode, Refused
from openfl_cli.transport.server import SERVICE_NAME, AggregatorServer
from tests.transport.certs import TlsFiles
from tests.transport.conftest import ClientFactory, Pki
from tests.transport.fakes import PLAN_HASH, FakeService


def _refused_at_once(call, code: RefusalCode, match: str) -> None:
    started = time.monotonic()
    with pytest.raises(Refused, match=match) as refused:
        call()
    assert refused.value.code is code
    assert time.monotonic() - started < 0.5, "refusals must not be retried"


def test_common_name_must_match_the_sender(make_client: ClientFactory, pki: Pki) -> None:
    client = make_client("two", tls=pki.clients["one"])
    _refused_at_once(
        client.ping,
        RefusalCode.NOT_AUTHORIZED,
        "not authorized: certificate common name 'one' does not match the sender 'two'",
    )


def test_sender_must_be_authorized(make_client: ClientFactory) -> None:
    client = make_client("mallory")
    _refused_at_once(
        lambda: client.get_model(0), RefusalCode.NOT_AUTHORIZED, "'mallory' is not in plan/cols.yaml"
    )


def test_plan_hash_must_match(make_client: ClientFactory) -> None:
    client = make_client(plan_hash="cd" * 48)
    _refused_at_once(
        lambda: client.get_tasks(5), RefusalCode.PLAN_MISMATCH, "plan mismatch: collaborator 'one'"
    )


def test_client_without_certificate_never_reaches_the_service(
    make_client: ClientFactory, service: FakeService
) -> None:
    client = make_client(require_client_auth=False, reconnect_timeout=0.5)
    with pytest.raises(FxError, match=r"unreachable.*may have rejected this collaborator's certificate"):
        client.send_result(0, "train", {}, 1, service.model)
    assert not service.results and not service.aborted


def test_certificate_from_a_foreign_ca_is_rejected(make_client: ClientFactory, pki: Pki) -> None:
    # Trusts the right CA, but presents a certificate named "one" signed by another CA.
    forged = TlsFiles(pki.server.cert_chain, pki.foreign.certificate, pki.foreign.private_key)
    with pytest.raises(FxError, match="unreachable"):
        make_client("one", tls=forged, reconnect_timeout=0.5).ping()


def test_aggregator_certificate_must_match_the_name(make_client: ClientFactory) -> None:
    started = time.monotonic()
    with pytest.raises(FxError, match=r"TLS connection to the aggregator .* refused"):
        make_client(server_name="elsewhere.example", reconnect_timeout=3).ping()
    assert time.monotonic() - started < 1.5


# -- hostile streams, sent byte by byte through a raw channel ------------------------------------------


def _raw_send(pki: Pki, port: int, messages: list[bytes], name: str = "one") -> grpc.RpcError:
    files = pki.clients[name]
    credentials = grpc.ssl_channel_credentials(
        files.cert_chain.read_bytes(), files.private_key.read_bytes(), files.certificate.read_bytes()
    )
    with grpc.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
        send = channel.stream_unary(
            f"/{SERVICE_NAME}/SendResult", lambda raw: raw, pb.SendResultResponse.FromString
        )
        with pytest.raises(grpc.RpcError) as error:
            send(iter(messages), metadata=call_metadata(name, PLAN_HASH), timeout=5)
    return error.value


def _result_header(model: dict[str, np.ndarray], **changes: object) -> tuple[bytes, list[memoryview]]:
    headers, payloads = raw_entries(model)
    header = pb.ResultHeader(round_number=0, task_name="train", sample_count=1, tensors=headers)
    for key, value in changes.items():
        setattr(header, key, value)
    return encode_header(header), payloads


def _chunks(payloads: list[memoryview]) -> list[bytes]:
    return list(chunk_messages(payloads, 256))


@pytest.fixture
def hostile(pki: Pki, server: AggregatorServer, service: FakeService, make_client: ClientFactory) -> Iterator:
    def send(messages: list[bytes]) -> grpc.RpcError:
        return _raw_send(pki, server.port, messages)

    yield send
    # whatever was thrown at it, the server still serves and nothing was counted
    assert make_client().ping().plan_hash == PLAN_HASH
    assert service.results == []


def _expect(error: grpc.RpcError, status: grpc.StatusCode, text: str) -> None:
    assert error.code() == status, error.details()
    assert text in (error.details() or "")


def test_chunk_overflow_is_refused(hostile, service: FakeService) -> None:
    header, payloads = _result_header(service.model)
    total = sum(p.nbytes for p in payloads)
    error = hostile([header, *_chunks(payloads), encode_chunk(total, [memoryview(b"x")])])
    _expect(error, grpc.StatusCode.INVALID_ARGUMENT, "invalid: chunk overflows the announced tensors")
    assert service.aborted and "overflows" in service.aborted[-1]


def test_truncated_stream_is_refused(hostile, service: FakeService) -> None:
    header, payloads = _result_header(service.model)
    error = hostile([header, *_chunks(payloads)[:-1]])
    _expect(error, grpc.StatusCode.INVALID_ARGUMENT, "stream ended after")


def test_out_of_order_chunk_is_refused(hostile, service: FakeService) -> None:
    header, payloads = _result_header(service.model)
    chunks = _chunks(payloads)
    error = hostile([header, chunks[1], chunks[0]])
    _expect(error, grpc.StatusCode.INVALID_ARGUMENT, "chunk at offset 256, expected 0")


def test_oversized_announcement_is_refused(hostile, service: FakeService) -> None:
    headers, _ = raw_entries(service.model)
    headers[0].shape[:] = [1 << 20, 1 << 10]
    headers[0].nbytes = headers[0].raw_nbytes = 4 << 30  # 4 GiB announced, nothing allocated
    header = encode_header(pb.ResultHeader(round_number=0, task_name="train", tensors=headers))
    error = hostile([header])
    _expect(
        error, grpc.StatusCode.INVALID_ARGUMENT, "is float32 [1048576, 1024], the model has float32 [32, 16]"
    )


@pytest.mark.parametrize(
    ("messages", "text"),
    [
        ([b"\x12\x05ab"], "malformed stream message"),
        ([encode_chunk(0, [memoryview(b"abc")])], "must start with its header"),
        ([], "must start with its header"),
    ],
)
def test_malformed_streams_are_refused(hostile, messages: list[bytes], text: str) -> None:
    _expect(hostile(messages), grpc.StatusCode.INVALID_ARGUMENT, text)


def test_unknown_names_and_second_headers_are_refused(hostile, service: FakeService) -> None:
    header, _ = _result_header(service.model)
    _expect(hostile([header, header]), grpc.StatusCode.INVALID_ARGUMENT, "holds one header")
    bad, _ = _result_header({"nope": np.zeros(3)})
    _expect(hostile([bad]), grpc.StatusCode.INVALID_ARGUMENT, "unknown tensor 'nope'")
    negative, _ = _result_header(service.model, sample_count=-5)
    _expect(hostile([negative]), grpc.StatusCode.INVALID_ARGUMENT, "negative sample count")


def test_message_over_the_size_limit_is_refused(pki: Pki, service: FakeService) -> None:
    limits = Limits(chunk_bytes=1024, max_message_bytes=4096)
    with AggregatorServer(service, "127.0.0.1", 0, pki.server.material(), limits=limits) as server:
        headers, _ = raw_entries({f"{'n' * 200}{i}": np.zeros(1) for i in range(40)})
        header = encode_header(pb.ResultHeader(round_number=0, task_name="train", tensors=headers))
        error = _raw_send(pki, server.port, [header])
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert service.results == []
