"""The director's EnvoyRegistry: who is online from their reports, the monitor thread that tells who
went offline, and each envoy's work queue with its long-poll `take`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from openfl_cli.director.envoys import EnvoyRegistry
from openfl_cli.proto import director_pb2 as dpb

PERIOD = 0.05  # offline after 2 * 0.05 + 1 = 1.1 s of silence


@pytest.fixture
def make_registry() -> Iterator[Callable[[float], EnvoyRegistry]]:
    made: list[EnvoyRegistry] = []

    def make(period: float = 5.0) -> EnvoyRegistry:
        registry = EnvoyRegistry(period)
        made.append(registry)
        return registry

    yield make
    for registry in made:
        registry.stop()


def _review(experiment: str) -> dpb.WorkItem:
    return dpb.WorkItem(review=dpb.Review(experiment=experiment, hash="ab" * 32))


def test_an_envoy_is_unknown_until_seen_then_online(make_registry) -> None:
    registry = make_registry()
    assert not registry.is_online("env_one")
    assert registry.online() == []
    registry.seen("env_two")
    registry.seen("env_one")
    assert registry.is_online("env_one") and registry.is_online("env_two")
    assert registry.online() == ["env_one", "env_two"]


def test_offline_after_is_two_periods_and_a_second(make_registry) -> None:
    assert make_registry(5.0).offline_after == 11.0
    assert make_registry(0.2).offline_after == pytest.approx(1.4)
    assert make_registry(5).period == 5.0


@pytest.mark.parametrize("period", [0, -1.0, float("nan")])
def test_a_period_must_be_positive(period: float) -> None:
    with pytest.raises(ValueError, match="must be > 0"):
        EnvoyRegistry(period)


def test_a_silent_envoy_goes_offline_once_while_a_reporting_one_stays(make_registry) -> None:
    registry = make_registry(PERIOD)
    calls: list[tuple[str, float]] = []
    offline = threading.Event()

    def listener(name: str, silent: float) -> None:
        calls.append((name, silent))
        offline.set()

    registry.on_offline(listener)
    stop_reporting = threading.Event()

    def report() -> None:
        while not stop_reporting.wait(PERIOD):
            registry.seen("steady")

    registry.seen("steady")
    registry.seen("silent")
    began = time.monotonic()
    reporter = threading.Thread(target=report, daemon=True)
    reporter.start()
    try:
        assert offline.wait(registry.offline_after + 2.0), "the silent envoy never went offline"
        elapsed = time.monotonic() - began
        time.sleep(3 * PERIOD)  # a listener called again would show here
    finally:
        stop_reporting.set()
        reporter.join()
    assert registry.offline_after <= elapsed < registry.offline_after + 1.0
    assert len(calls) == 1
    name, silent = calls[0]
    assert name == "silent"
    assert registry.offline_after <= silent < registry.offline_after + 1.0
    assert not registry.is_online("silent")
    assert registry.is_online("steady")
    assert registry.online() == ["steady"]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_listener_that_raises_does_not_stop_the_monitor(make_registry) -> None:
    registry = make_registry(PERIOD)
    later = threading.Event()

    def listener(name: str, silent: float) -> None:
        if name == "first":
            raise RuntimeError("a broken listener")
        later.set()

    registry.on_offline(listener)
    registry.seen("first")
    time.sleep(0.2)
    registry.seen("second")
    assert later.wait(registry.offline_after + 0.5), "the second envoy was never reported offline"


def test_a_report_brings_an_offline_envoy_back(make_registry) -> None:
    registry = make_registry(PERIOD)
    offline = threading.Event()
    registry.on_offline(lambda name, silent: offline.set())
    registry.seen("env_one", "Flow-1")
    assert offline.wait(registry.offline_after + 2.0)
    assert not registry.is_online("env_one")
    assert registry.listing().envoys[0].experiment == ""  # an offline envoy runs nothing
    registry.seen("env_one")
    assert registry.is_online("env_one")
    assert [(e.name, e.online) for e in registry.listing().envoys] == [("env_one", True)]


def test_take_returns_a_pushed_item_at_once(make_registry) -> None:
    registry = make_registry()
    registry.push("env_one", _review("first"))
    registry.push("env_one", _review("second"))
    began = time.monotonic()
    assert registry.take("env_one", 5.0).review.experiment == "first"
    assert registry.take("env_one", 5.0).review.experiment == "second"
    assert time.monotonic() - began < 0.5


def test_take_waits_for_an_item_pushed_later(make_registry) -> None:
    registry = make_registry()
    pusher = threading.Timer(0.1, registry.push, args=("env_one", _review("later")))
    began = time.monotonic()
    pusher.start()
    item = registry.take("env_one", 10.0)
    elapsed = time.monotonic() - began
    pusher.join()
    assert item.review.experiment == "later"
    assert 0.09 <= elapsed < 2.0  # woken by the push, long before the wait ends


def test_take_gives_an_empty_item_after_the_wait(make_registry) -> None:
    registry = make_registry()
    registry.push("env_two", _review("not yours"))
    began = time.monotonic()
    item = registry.take("env_one", 0.1)
    elapsed = time.monotonic() - began
    assert item == dpb.WorkItem() and item.WhichOneof("kind") is None
    assert 0.1 <= elapsed < 1.0
    assert registry.take("env_two", 0.0).review.experiment == "not yours"


def test_take_counts_as_being_seen(make_registry) -> None:
    registry = make_registry()
    registry.take("env_one", 0.0)
    assert registry.is_online("env_one")


def test_listing_shows_each_envoy_sorted_with_its_state(make_registry) -> None:
    registry = make_registry(2.0)
    before = time.time()
    registry.seen("env_two", "Flow-ab12")
    registry.seen("env_one")
    registry.push("env_three", _review("queued only"))  # known but never seen
    listing = registry.listing()
    assert listing.period_seconds == 2.0
    assert [(e.name, e.online, e.experiment) for e in listing.envoys] == [
        ("env_one", True, ""),
        ("env_three", False, ""),
        ("env_two", True, "Flow-ab12"),
    ]
    seen = {e.name: e.last_seen for e in listing.envoys}
    assert before <= seen["env_one"] <= time.time()
    assert seen["env_three"] == 0.0
    registry.seen("env_two")  # a report without an experiment keeps the one it runs
    assert registry.listing().envoys[2].experiment == "Flow-ab12"


def test_stop_ends_the_monitor_and_wakes_a_waiting_take(make_registry) -> None:
    before = set(threading.enumerate())
    registry = make_registry()
    monitors = [t for t in threading.enumerate() if t not in before and t.name == "fx-envoy-health"]
    assert len(monitors) == 1 and monitors[0].is_alive()
    taken: list[dpb.WorkItem] = []
    waiter = threading.Thread(target=lambda: taken.append(registry.take("env_one", 30.0)), daemon=True)
    waiter.start()
    time.sleep(0.05)
    began = time.monotonic()
    registry.stop()
    waiter.join(timeout=2.0)
    assert not monitors[0].is_alive()
    assert not waiter.is_alive() and taken == [dpb.WorkItem()]
    assert time.monotonic() - began < 2.0
