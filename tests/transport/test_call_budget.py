"""One certified sender cannot take the server's threads from the others (real mutual TLS)."""

from __future__ import annotations

import time

import grpc
import pytest

from openfl_cli.proto import federation_pb2 as pb
from openfl_cli.transport.core.budget import CallBudget
from openfl_cli.transport.messages import Action, RefusalCode, Refused
from openfl_cli.transport.server import CALLS_PER_COLLABORATOR
from tests.transport.conftest import ClientFactory
from tests.transport.fakes import FakeService


def test_a_budget_counts_calls_per_sender_and_release_is_idempotent() -> None:
    budget = CallBudget(2)
    first, second = budget.take("one"), budget.take("one")
    other = budget.take("two")
    with pytest.raises(Refused) as busy:
        budget.take("one")
    assert busy.value.code is RefusalCode.BUSY and "one already holds 2 calls" in str(busy.value)
    first()
    first()  # released once only
    assert budget.held("one") == 1
    budget.take("one")
    second()
    other()
    assert budget.held("two") == 0


def test_a_flood_of_long_polls_from_one_collaborator_does_not_starve_another(
    make_client: ClientFactory, service: FakeService
) -> None:
    flooder, honest = make_client("one"), make_client("two")
    stub = flooder._get_tasks  # raw calls: the flood does not retry like a collaborator would
    polls = [
        stub.future(pb.GetTasksRequest(wait_seconds=20), timeout=30, metadata=flooder._metadata)
        for _ in range(40)
    ]
    try:
        time.sleep(0.5)  # the flood is in
        started = time.monotonic()
        reply = honest.ping()
        assignment = honest.get_tasks(0.0)
        took = time.monotonic() - started
        assert reply.aggregator == "aggregator.test" and assignment.action is Action.WAIT
        assert took < 2.0, f"the honest collaborator waited {took:.1f} s behind the flood"
        refused = [poll for poll in polls if poll.done() and poll.exception() is not None]
        assert len(refused) == 40 - CALLS_PER_COLLABORATOR
        assert all(poll.exception().code() is grpc.StatusCode.RESOURCE_EXHAUSTED for poll in refused)
    finally:
        service.work.set()  # the polls still held end now
        for poll in polls:
            poll.cancel()
