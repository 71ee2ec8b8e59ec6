"""The federation's own part of the per-call check: the caller's plan hash must be the aggregator's.

The core's guard (`transport.core.guard`) authenticates the sender first, so that strangers learn
nothing about the plan. Free of grpc: the in-process link runs the same comparison.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping

from openfl_cli.transport.core.metadata import sender_metadata
from openfl_cli.transport.messages import RefusalCode, Refused

PLAN_HASH_KEY = "fx-plan-hash"


def call_metadata(collaborator: str, plan_hash: str) -> tuple[tuple[str, str], ...]:
    """What a collaborator attaches to every call."""
    return sender_metadata(collaborator, (PLAN_HASH_KEY, plan_hash))


def plan_refusal(sender: str, claimed_hash: str, expected_hash: str) -> Refused | None:
    """The PLAN_MISMATCH refusal when the hashes differ (compared in constant time), else None."""
    if hmac.compare_digest(claimed_hash.encode(), expected_hash.encode()):
        return None
    return Refused(
        RefusalCode.PLAN_MISMATCH,
        f"collaborator {sender!r} runs plan {_short(claimed_hash)}, the aggregator runs"
        f" {_short(expected_hash)}: use the aggregator's plan",
    )


class PlanHashCheck:
    """A `CallCheck` of the guard: refuses a call whose plan hash is not `plan_hash()`."""

    def __init__(self, plan_hash: Callable[[], str]) -> None:
        self._plan_hash = plan_hash

    def __call__(self, metadata: Mapping[str, str], sender: str) -> None:
        refusal = plan_refusal(sender, metadata.get(PLAN_HASH_KEY, ""), self._plan_hash())
        if refusal is not None:
            raise refusal


def _short(plan_hash: str) -> str:
    return f"{plan_hash[:12]}..." if len(plan_hash) > 12 else (plan_hash or "(none)")
