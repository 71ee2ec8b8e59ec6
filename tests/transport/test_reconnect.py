"""A collaborator that loses the aggregator retries for a bounded time, then says so clearly."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from openfl_cli.errors import FxError
from openfl_cli.transport.server import AggregatorServer
from tests.transport.conftest import ClientFactory, Pki
from tests.transport.fakes import FakeService


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_gives_up_after_the_timeout(make_client: ClientFactory) -> None:
    port = _free_port()
    client = make_client(port=port, reconnect_interval=0.2, reconnect_timeout=1.0)
    started = time.monotonic()
    with pytest.raises(FxError, match=f"aggregator at 127.0.0.1:{port} unreachable for 1 s: "):
        client.get_tasks(5)
    assert 0.9 < time.monotonic() - started < 3.0


def test_reconnects_when_the_aggregator_comes_back(
    make_client: ClientFactory, pki: Pki, service: FakeService
) -> None:
    port = _free_port()
    client = make_client(port=port, reconnect_interval=0.2, reconnect_timeout=4.0)
    late = AggregatorServer(service, "127.0.0.1", port, pki.server.material())
    starter = threading.Timer(0.6, late.start)
    starter.start()
    try:
        assert client.ping().round_number == 0
        assert set(client.get_model(0)) == set(service.model)
    finally:
        starter.join()
        late.stop(grace=0.2)


def test_second_server_on_the_same_port_fails(
    server: AggregatorServer, pki: Pki, service: FakeService
) -> None:
    with pytest.raises(FxError, match="cannot listen on"):
        AggregatorServer(service, "127.0.0.1", server.port, pki.server.material()).start()
