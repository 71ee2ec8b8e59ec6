"""The federated learning plan: `Plan.load(...)` reads, merges, validates and hashes plan/plan.yaml."""

from openfl_cli.plan.plan import Plan, canonical_hash
from openfl_cli.plan.schema import AggregatorSettings, CollaboratorSettings, NetworkSettings, TaskSpec

__all__ = [
    "AggregatorSettings",
    "CollaboratorSettings",
    "NetworkSettings",
    "Plan",
    "TaskSpec",
    "canonical_hash",
]
