"""A straggler policy with required sites: the core's cutoff policy, except that a round never closes
without the job's mandatory clients (FLARE's `mandatory_clients`). The aggregator builds it from the
plan like any policy: `openfl_cli.job.straggler.MandatorySitesPolicy`."""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

from openfl_cli.federation.straggler import CutoffTimePolicy


class MandatorySitesPolicy(CutoffTimePolicy):
    """After `straggler_cutoff_time` seconds the round closes with whoever reported, once at least
    `minimum_reporting` did and every site of `mandatory_sites` that has tasks this round did."""

    def __init__(
        self,
        straggler_cutoff_time: float = math.inf,
        minimum_reporting: int = 1,
        mandatory_sites: Sequence[str] = (),
    ) -> None:
        super().__init__(straggler_cutoff_time, minimum_reporting)
        if isinstance(mandatory_sites, str) or not all(isinstance(site, str) for site in mandatory_sites):
            raise ValueError(f"mandatory_sites must be a list of site names, got {mandatory_sites!r}")
        self.mandatory_sites = frozenset(mandatory_sites)

    def can_close(self, done: Collection[str], now: float) -> bool:
        if (self.mandatory_sites & self.expected) - set(done):
            return False
        return super().can_close(done, now)

    def can_succeed(self, unavailable: Collection[str]) -> bool:
        if (self.mandatory_sites & self.expected) & set(unavailable):
            return False
        return super().can_succeed(unavailable)
