"""When may a round close before every assigned collaborator reported? Pure logic: the aggregator
passes the times (its clock), so the policies are testable without sleeping.

    policy.round_open(expected, started_at)   # collaborators with tasks this round, time.monotonic()
    policy.can_close(done, now)               # after every finished collaborator, and at deadlines
    policy.next_deadline(now)                 # wait on a condition at most until then (None: no timeout)
    policy.can_succeed(unavailable)           # after a collaborator's task failed: False stops the experiment

Every policy closes the round as soon as all expected collaborators are done; a round with nobody
expected closes at once. `minimum_reporting` larger than the number expected means "all of them".
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Collection
from typing import Protocol


def _check_minimum(minimum_reporting: int) -> int:
    if isinstance(minimum_reporting, bool) or not isinstance(minimum_reporting, int) or minimum_reporting < 1:
        raise ValueError(f"minimum_reporting must be an integer >= 1, got {minimum_reporting!r}")
    return minimum_reporting


class StragglerHandling(Protocol):
    """What the aggregator calls on the plan's straggler handling policy (`StragglerPolicy` is one)."""

    def round_open(self, expected: Collection[str], started_at: float) -> None: ...

    def can_close(self, done: Collection[str], now: float) -> bool: ...

    def next_deadline(self, now: float) -> float | None: ...


class StragglerPolicy(ABC):
    def __init__(self) -> None:
        self._expected: frozenset[str] = frozenset()
        self._started_at = 0.0

    def round_open(self, expected: Collection[str], started_at: float) -> None:
        """A round starts: `expected` collaborators have tasks; `started_at` on the caller's clock."""
        self._expected = frozenset(expected)
        self._started_at = float(started_at)

    @property
    def expected(self) -> frozenset[str]:
        return self._expected

    def can_close(self, done: Collection[str], now: float) -> bool:
        """True when the round may close with the collaborators in `done` (others are ignored)."""
        reported = len(self._expected.intersection(done))
        if reported >= len(self._expected):
            return True
        return self._enough(reported, now)

    def next_deadline(self, now: float) -> float | None:
        """The next time after `now` at which `can_close` may turn true without a new report."""
        return None

    def can_succeed(self, unavailable: Collection[str]) -> bool:
        """Whether the round can still close as this policy wants when the collaborators in
        `unavailable` (their task failed) never report. False stops the experiment."""
        return len(self._expected - frozenset(unavailable)) >= self.required()

    def required(self) -> int:
        """How many of the expected collaborators must report for the round to close."""
        return min(1, len(self._expected))

    @abstractmethod
    def _enough(self, reported: int, now: float) -> bool: ...


class WaitForAllPolicy(StragglerPolicy):
    """The round closes when every expected collaborator is done."""

    def required(self) -> int:
        return len(self._expected)

    def _enough(self, reported: int, now: float) -> bool:
        return False


class CutoffTimePolicy(StragglerPolicy):
    """After `straggler_cutoff_time` seconds the round closes with whoever reported, once at least
    `minimum_reporting` did (inf: never cut off, i.e. wait for all)."""

    def __init__(self, straggler_cutoff_time: float = math.inf, minimum_reporting: int = 1) -> None:
        super().__init__()
        cutoff = straggler_cutoff_time
        if (
            isinstance(cutoff, bool)
            or not isinstance(cutoff, (int, float))
            or math.isnan(cutoff)
            or cutoff <= 0
        ):
            raise ValueError(f"straggler_cutoff_time must be a number of seconds > 0, got {cutoff!r}")
        self.straggler_cutoff_time = float(cutoff)
        self.minimum_reporting = _check_minimum(minimum_reporting)

    def _deadline(self) -> float:
        return self._started_at + self.straggler_cutoff_time

    def required(self) -> int:
        if not math.isfinite(self.straggler_cutoff_time):  # never cut off: everyone
            return len(self._expected)
        return min(self.minimum_reporting, len(self._expected))

    def _enough(self, reported: int, now: float) -> bool:
        return now >= self._deadline() and reported >= self.minimum_reporting

    def next_deadline(self, now: float) -> float | None:
        deadline = self._deadline()
        return deadline if math.isfinite(deadline) and now < deadline else None


class PercentagePolicy(StragglerPolicy):
    """The round closes once ceil(percent_collaborators_needed * expected) collaborators reported,
    and at least `minimum_reporting`."""

    def __init__(self, percent_collaborators_needed: float = 1.0, minimum_reporting: int = 1) -> None:
        super().__init__()
        percent = percent_collaborators_needed
        if isinstance(percent, bool) or not isinstance(percent, (int, float)) or not 0 < percent <= 1:
            raise ValueError(f"percent_collaborators_needed must be in (0, 1], got {percent!r}")
        self.percent_collaborators_needed = float(percent)
        self.minimum_reporting = _check_minimum(minimum_reporting)

    def needed(self) -> int:
        """Reports needed this round (capped at the number expected)."""
        # Rounded to 9 decimals first so that e.g. 0.7 * 10 does not become 8 through float noise.
        share = math.ceil(round(self.percent_collaborators_needed * len(self._expected), 9))
        return min(len(self._expected), max(self.minimum_reporting, share))

    def required(self) -> int:
        return self.needed()

    def _enough(self, reported: int, now: float) -> bool:
        return reported >= self.needed()
