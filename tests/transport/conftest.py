"""An in-process aggregator server with real mutual TLS on 127.0.0.1 and a fake service behind it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from openfl_cli.transport.client import AggregatorClient
from openfl_cli.transport.server import AggregatorServer
from tests.transport.certs import TlsFiles, issue, make_ca
from tests.transport.fakes import PLAN_HASH, FakeService


@dataclass(frozen=True)
class Pki:
    server: TlsFiles
    clients: dict[str, TlsFiles]
    foreign: TlsFiles  # "one", signed by another CA


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root: Path = tmp_path_factory.mktemp("pki")
    ca = make_ca(root / "ca")
    other = make_ca(root / "other", "foreign CA")
    return Pki(
        server=issue(ca, root / "agg", "localhost", server=True),
        clients={name: issue(ca, root / name, name, server=False) for name in ("one", "two", "mallory")},
        foreign=issue(other, root / "foreign", "one", server=False),
    )


def small_model() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "dense.weight": rng.standard_normal((32, 16)).astype(np.float32),
        "dense.bias": np.zeros(16, dtype=np.float32),
        "steps": np.array(7, dtype=np.int64),
    }


@pytest.fixture
def service() -> FakeService:
    return FakeService(small_model())


class Authorizer:
    """Stands in for the PKI's: only names in `allowed` may call."""

    def __init__(self, allowed: set[str]) -> None:
        self.allowed = allowed

    def check(self, context: Any, claimed_sender: str) -> None:
        if claimed_sender not in self.allowed:
            raise PermissionError(f"{claimed_sender!r} is not in plan/cols.yaml")


@pytest.fixture
def server(pki: Pki, service: FakeService) -> Iterator[AggregatorServer]:
    server = AggregatorServer(
        service,
        "127.0.0.1",
        0,
        pki.server.material(),
        authorizer=Authorizer({"one", "two"}),
        expected_collaborators=2,
    )
    server.start()
    yield server
    server.stop(grace=0.5)


ClientFactory = Callable[..., AggregatorClient]


@pytest.fixture
def make_client(pki: Pki, server: AggregatorServer) -> Iterator[ClientFactory]:
    clients: list[AggregatorClient] = []

    def make(name: str = "one", *, tls: TlsFiles | None = None, plan_hash: str = PLAN_HASH, **kwargs: Any):
        options: dict[str, Any] = {"reconnect_interval": 0.2, "reconnect_timeout": 1.0, **kwargs}
        client = AggregatorClient(
            "127.0.0.1",
            options.pop("port", server.port),
            name,
            plan_hash,
            (tls or pki.clients[name]).material(),
            **options,
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
