"""RetryPolicy: retries transport failures until its timeout since the first one, nothing else."""

from __future__ import annotations

import pytest

from openfl_cli.errors import FxError
from openfl_cli.transport.messages import AggregatorRefused, RefusalCode
from openfl_cli.transport.retry import RetryPolicy, TransportFailure


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def policy(interval: float, timeout: float, time: FakeTime) -> RetryPolicy:
    return RetryPolicy(interval, timeout, clock=time.clock, sleep=time.sleep)


def test_gives_up_after_the_timeout_since_the_first_failure() -> None:
    time = FakeTime()
    calls: list[float] = []

    def down() -> None:
        calls.append(time.now)
        raise TransportFailure("connection refused", " (maybe a firewall)")

    with pytest.raises(
        FxError, match=r"^aggregator at h:1 unreachable for 1 s: connection refused \(maybe a firewall\)$"
    ):
        policy(0.3, 1.0, time).run(down, what="Ping", peer="aggregator at h:1")
    assert time.sleeps == pytest.approx([0.3, 0.3, 0.3, 0.1])  # the last wait ends at the timeout
    assert len(calls) == 5


def test_a_call_that_recovers_returns_its_answer() -> None:
    time = FakeTime()
    outcomes: list[object] = [TransportFailure("reset"), TransportFailure("reset"), "answer"]

    def flaky() -> object:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert policy(0.5, 10.0, time).run(flaky, what="GetTasks", peer="aggregator at h:1") == "answer"
    assert time.sleeps == [0.5, 0.5]


def test_other_errors_pass_at_once() -> None:
    time = FakeTime()

    def refuse() -> None:
        raise AggregatorRefused(RefusalCode.LATE, "round 3 is closed")

    with pytest.raises(AggregatorRefused, match="late: round 3 is closed"):
        policy(0.5, 10.0, time).run(refuse, what="GetModel", peer="aggregator at h:1")
    assert time.sleeps == []


@pytest.mark.parametrize(("interval", "timeout"), [(0, 1), (1, 0), (-1, 1), (1, float("inf")), (True, 1)])
def test_interval_and_timeout_must_be_positive_numbers(interval: float, timeout: float) -> None:
    with pytest.raises(ValueError, match=r"retry (interval|timeout) must be"):
        RetryPolicy(interval, timeout)
