"""The director's state stream (a header, then the chunks of the pickle and the arrays): round trips,
bounded message sizes for a state of any size, the refusals of a malformed stream; and the role check
that ties each director service to the unit of the peer's certificate."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from openfl_cli.pki.nodes import certify_node, create_director_authority, node_request
from openfl_cli.proto import director_pb2 as dpb
from openfl_cli.transport.assembly import raw_entries
from openfl_cli.transport.chunking import chunk_messages
from openfl_cli.transport.director.server import ENVOY_ROLE, EXPERIMENTER_ROLE, RoleCheck
from openfl_cli.transport.director.state_stream import (
    PICKLE_TENSOR,
    ReceivedState,
    decode_state_message,
    read_state,
    state_messages,
)
from openfl_cli.transport.frames import encode_chunk, encode_header
from openfl_cli.transport.limits import FRAME_OVERHEAD, Limits
from openfl_cli.transport.messages import StreamError
from openfl_cli.transport.tls import PEM_CERT_PROPERTY

SMALL = Limits(chunk_bytes=1024, max_message_bytes=1024 + FRAME_OVERHEAD)
PAYLOAD = b"\x80\x05a pickle of the flow's attributes\x94." * 10


def _header() -> dpb.StateHeader:
    return dpb.StateHeader(task=dpb.ChainTask(experiment="Flow-ab12", task="work-1", step="work"))


def _arrays() -> dict[str, np.ndarray]:
    return {
        "0": np.arange(12, dtype=np.float32).reshape(3, 4),
        "1": np.array([-(2**40), 0, 2**40], dtype=np.int64),
        "2": np.array(3.5),  # 0-d
        "3": np.zeros((0, 5), dtype=np.float64),  # empty
    }


def _received(messages: Iterator[bytes], limits: Limits = SMALL, **kwargs: int) -> ReceivedState:
    return read_state((decode_state_message(raw) for raw in messages), limits, **kwargs)


def test_a_state_round_trips_with_its_header_payload_and_arrays() -> None:
    arrays = _arrays()
    received = _received(state_messages(_header(), PAYLOAD, arrays, SMALL))
    assert received.header.task == _header().task
    assert [t.name for t in received.header.tensors] == [PICKLE_TENSOR, "0", "1", "2", "3"]
    assert received.payload == PAYLOAD
    assert set(received.arrays) == set(arrays)
    for name, array in arrays.items():
        got = received.arrays[name]
        assert got.dtype == array.dtype and got.shape == array.shape
        np.testing.assert_array_equal(got, array)
    assert received.nbytes == len(PAYLOAD) + sum(a.nbytes for a in arrays.values())


def test_a_state_without_arrays_and_an_empty_payload_round_trips() -> None:
    received = _received(state_messages(dpb.StateHeader(final=dpb.ResultHeader()), b"", {}, SMALL))
    assert received.payload == b"" and received.arrays == {}
    assert received.header.HasField("final")


def test_the_callers_header_is_left_as_it_was() -> None:
    header = _header()
    list(state_messages(header, PAYLOAD, _arrays(), SMALL))
    assert len(header.tensors) == 0


def test_a_large_state_streams_in_bounded_messages() -> None:
    big = np.random.default_rng(0).standard_normal(1 << 17)  # 1 MiB of float64
    payload = bytes(range(256)) * 20  # 5 KiB
    messages = list(state_messages(_header(), payload, {"0": big, "1": np.ones(3)}, SMALL))
    assert len(messages) > (big.nbytes + len(payload)) // SMALL.chunk_bytes
    assert max(len(raw) for raw in messages) <= SMALL.max_message_bytes
    received = _received(iter(messages))
    assert received.payload == payload
    np.testing.assert_array_equal(received.arrays["0"], big)
    np.testing.assert_array_equal(received.arrays["1"], np.ones(3))


def test_an_array_may_not_take_the_pickles_name() -> None:
    with pytest.raises(ValueError, match="may not be named 'pickle'"):
        list(state_messages(_header(), PAYLOAD, {PICKLE_TENSOR: np.ones(2)}, SMALL))


def test_a_header_over_the_message_limit_is_refused() -> None:
    many = {str(i): np.zeros(1) for i in range(100)}
    with pytest.raises(StreamError, match="exceeds max_message_bytes"):
        list(state_messages(_header(), PAYLOAD, many, SMALL))


def test_max_bytes_bounds_the_announced_total() -> None:
    messages = state_messages(_header(), PAYLOAD, {"0": np.zeros(1000)}, SMALL)
    with pytest.raises(StreamError, match="exceed the limit of 4000 bytes"):
        _received(messages, max_bytes=4000)


# -- refusals ------------------------------------------------------------------------------------------


def test_an_empty_stream_is_refused() -> None:
    with pytest.raises(StreamError, match="must start with its header"):
        read_state(iter([]), SMALL)


def test_a_stream_that_starts_with_a_chunk_is_refused() -> None:
    messages = list(state_messages(_header(), PAYLOAD, _arrays(), SMALL))
    with pytest.raises(StreamError, match="must start with its header"):
        _received(iter(messages[1:]))


def test_a_second_header_is_refused() -> None:
    messages = list(state_messages(_header(), PAYLOAD, _arrays(), SMALL))
    with pytest.raises(StreamError, match="holds one header"):
        _received(iter([messages[0], messages[1], messages[0], *messages[2:]]))


def test_a_first_tensor_other_than_the_pickle_is_refused() -> None:
    headers, payloads = raw_entries({"0": np.ones(4, dtype=np.uint8)})
    header = _header()
    header.tensors.extend(headers)
    messages = [encode_header(header), *chunk_messages(payloads, SMALL.chunk_bytes)]
    with pytest.raises(StreamError, match="first tensor must be 'pickle'"):
        _received(iter(messages))


def test_a_pickle_tensor_of_another_dtype_is_refused() -> None:
    headers, payloads = raw_entries({PICKLE_TENSOR: np.ones(4, dtype=np.float32)})
    header = _header()
    header.tensors.extend(headers)
    with pytest.raises(StreamError, match=r"\(uint8, 1-d\)"):
        _received(iter([encode_header(header), *chunk_messages(payloads, SMALL.chunk_bytes)]))


def test_a_truncated_stream_is_refused() -> None:
    messages = list(state_messages(_header(), PAYLOAD, _arrays(), SMALL))
    with pytest.raises(StreamError, match=r"stream ended after .* announced bytes"):
        _received(iter(messages[:-1]))


def test_a_chunk_at_the_wrong_offset_is_refused() -> None:
    messages = list(state_messages(_header(), PAYLOAD, _arrays(), SMALL))
    with pytest.raises(StreamError, match="chunk at offset 7, expected 0"):
        _received(iter([messages[0], encode_chunk(7, [memoryview(b"abc")])]))


def test_a_chunk_past_the_announced_bytes_is_refused() -> None:
    messages = list(state_messages(_header(), b"ab", {}, SMALL))
    with pytest.raises(StreamError, match="overflows the announced tensors"):
        _received(iter([messages[0], encode_chunk(0, [memoryview(b"abc")])]))


def test_a_malformed_message_is_refused() -> None:
    messages = list(state_messages(_header(), PAYLOAD, _arrays(), SMALL))
    with pytest.raises(StreamError, match="malformed stream message"):
        _received(iter([b"\xff\xff garbage"]))
    with pytest.raises(StreamError, match="malformed stream message"):
        _received(iter([messages[0], b"\x12\x05ab"]))


# -- the role check ------------------------------------------------------------------------------------


class FakeContext:
    """What RoleCheck reads from a grpc.ServicerContext: the peer's verified certificate."""

    def __init__(self, pem: bytes | None) -> None:
        self._auth = {PEM_CERT_PROPERTY: [pem]} if pem is not None else {}

    def auth_context(self) -> dict[str, list[bytes]]:
        return self._auth


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """PEM certificates the director's authority signed: an envoy's and an experimenter's."""
    root = tmp_path_factory.mktemp("pki")
    director = root / "director"
    create_director_authority(director)
    pems: dict[str, bytes] = {}
    for kind, name in (("envoy", "env_one"), ("experimenter", "alice")):
        created = node_request(root / kind, kind, name)
        assert created.package is not None
        signed = certify_node(director, created.package, kind, expected_hash=created.hash)
        pems[kind] = Path(signed.certificate).read_bytes()
    return pems


def test_an_envoy_certificate_passes_the_envoy_service(certificates: dict[str, bytes]) -> None:
    RoleCheck(ENVOY_ROLE).check(FakeContext(certificates["envoy"]), "env_one")
    RoleCheck(EXPERIMENTER_ROLE).check(FakeContext(certificates["experimenter"]), "alice")


def test_an_experimenter_certificate_is_refused_by_the_envoy_service(certificates: dict[str, bytes]) -> None:
    with pytest.raises(PermissionError) as excinfo:
        RoleCheck(ENVOY_ROLE).check(FakeContext(certificates["experimenter"]), "env_one")
    message = str(excinfo.value)
    assert "'env_one' holds an 'experimenter' certificate" in message
    assert "admits envoys only" in message


def test_an_envoy_certificate_is_refused_by_the_experiments_service(certificates: dict[str, bytes]) -> None:
    with pytest.raises(PermissionError, match="'envoy' certificate; this service admits experimenters only"):
        RoleCheck(EXPERIMENTER_ROLE).check(FakeContext(certificates["envoy"]), "env_one")


@pytest.mark.parametrize("pem", [None, b"not a certificate"])
def test_a_peer_without_a_role_is_refused(pem: bytes | None) -> None:
    with pytest.raises(PermissionError, match="a certificate without a role; this service admits envoys"):
        RoleCheck(ENVOY_ROLE).check(FakeContext(pem), "env_one")
