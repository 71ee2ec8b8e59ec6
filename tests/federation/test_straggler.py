from __future__ import annotations

import math

import pytest

from openfl_cli.federation.straggler import CutoffTimePolicy, PercentagePolicy, WaitForAllPolicy

EXPECTED = {"a", "b", "c", "d"}


def test_wait_for_all() -> None:
    policy = WaitForAllPolicy()
    policy.round_open(EXPECTED, started_at=100.0)
    assert not policy.can_close({"a", "b", "c"}, now=1e9)
    assert not policy.can_close({"a", "b", "c", "stranger"}, now=1e9)
    assert policy.can_close(EXPECTED, now=100.0)
    assert policy.next_deadline(100.0) is None


def test_empty_round_closes_at_once() -> None:
    for policy in (WaitForAllPolicy(), CutoffTimePolicy(10), PercentagePolicy(0.5)):
        policy.round_open(set(), started_at=0.0)
        assert policy.can_close(set(), now=0.0)


def test_cutoff_time_with_a_fake_clock() -> None:
    policy = CutoffTimePolicy(straggler_cutoff_time=30, minimum_reporting=2)
    policy.round_open(EXPECTED, started_at=1000.0)
    assert policy.next_deadline(1000.0) == 1030.0
    assert not policy.can_close({"a", "b"}, now=1029.9)
    assert policy.can_close({"a", "b"}, now=1030.0)
    assert not policy.can_close({"a"}, now=5000.0)  # past the cutoff but below the minimum
    assert policy.next_deadline(1030.0) is None  # only a new report can close it now
    assert policy.can_close(EXPECTED, now=1000.0)  # everybody done: no need to wait
    policy.round_open(EXPECTED, started_at=2000.0)  # the next round has its own deadline
    assert policy.next_deadline(2000.0) == 2030.0


def test_cutoff_minimum_above_expected_means_all() -> None:
    policy = CutoffTimePolicy(1, minimum_reporting=10)
    policy.round_open({"a", "b"}, started_at=0.0)
    assert not policy.can_close({"a"}, now=100.0)
    assert policy.can_close({"a", "b"}, now=0.5)


def test_infinite_cutoff_waits_for_all() -> None:
    policy = CutoffTimePolicy(math.inf)
    policy.round_open(EXPECTED, started_at=0.0)
    assert policy.next_deadline(0.0) is None
    assert not policy.can_close({"a", "b", "c"}, now=1e12)


def test_percentage_policy() -> None:
    policy = PercentagePolicy(percent_collaborators_needed=0.5)
    policy.round_open(EXPECTED, started_at=0.0)
    assert policy.needed() == 2
    assert not policy.can_close({"a"}, now=0.0)
    assert policy.can_close({"a", "b"}, now=0.0)
    assert policy.next_deadline(0.0) is None
    policy = PercentagePolicy(0.7, minimum_reporting=1)
    policy.round_open({f"c{i}" for i in range(10)}, started_at=0.0)
    assert policy.needed() == 7  # no float-noise rounding up to 8
    policy = PercentagePolicy(0.1, minimum_reporting=3)
    policy.round_open(EXPECTED, started_at=0.0)
    assert policy.needed() == 3
    policy = PercentagePolicy(0.1, minimum_reporting=9)
    policy.round_open(EXPECTED, started_at=0.0)
    assert policy.needed() == 4


@pytest.mark.parametrize(
    ("factory", "setting"),
    [
        (lambda: CutoffTimePolicy(0), "straggler_cutoff_time"),
        (lambda: CutoffTimePolicy(-5), "straggler_cutoff_time"),
        (lambda: CutoffTimePolicy(float("nan")), "straggler_cutoff_time"),
        (lambda: CutoffTimePolicy("10"), "straggler_cutoff_time"),
        (lambda: CutoffTimePolicy(10, minimum_reporting=0), "minimum_reporting"),
        (lambda: CutoffTimePolicy(10, minimum_reporting=1.5), "minimum_reporting"),
        (lambda: PercentagePolicy(0), "percent_collaborators_needed"),
        (lambda: PercentagePolicy(1.2), "percent_collaborators_needed"),
        (lambda: PercentagePolicy(True), "percent_collaborators_needed"),
        (lambda: PercentagePolicy(0.5, minimum_reporting=-1), "minimum_reporting"),
    ],
)
def test_settings_are_validated(factory, setting) -> None:
    with pytest.raises(ValueError, match=setting):
        factory()


def test_can_succeed_says_whether_the_round_can_close_without_the_failed() -> None:
    from openfl_cli.job.straggler import MandatorySitesPolicy

    expected = ["a", "b", "c", "d"]
    cases = [
        (WaitForAllPolicy(), [], True),
        (WaitForAllPolicy(), ["a"], False),
        (CutoffTimePolicy(straggler_cutoff_time=10, minimum_reporting=2), ["a", "b"], True),
        (CutoffTimePolicy(straggler_cutoff_time=10, minimum_reporting=2), ["a", "b", "c"], False),
        (CutoffTimePolicy(), ["a"], False),  # never cut off: it waits for everyone
        (PercentagePolicy(0.5), ["a", "b"], True),
        (PercentagePolicy(0.5), ["a", "b", "c"], False),
        (MandatorySitesPolicy(10, 1, ["d"]), ["a", "b"], True),
        (MandatorySitesPolicy(10, 1, ["d"]), ["d"], False),
    ]
    for policy, failed, verdict in cases:
        policy.round_open(expected, 0.0)
        assert policy.can_succeed(failed) is verdict, (type(policy).__name__, failed)
