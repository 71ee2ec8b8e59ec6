"""The plan hash: a canonical form of the resolved config, blind to key order and comments."""

from __future__ import annotations

from openfl_cli.plan import Plan, canonical_hash

from .conftest import PLAN

REORDERED = """\
# the same plan, sections and keys in another order, with comments
tasks:
  defaults: plan/defaults/tasks_numpy.yaml   # the three default tasks
compression_pipeline: {defaults: plan/defaults/compression_pipeline.yaml}
assigner:
  defaults: plan/defaults/assigner.yaml
network:
  defaults: plan/defaults/network.yaml
task_runner:
  settings: {}
  template: src.taskrunner.TinyRunner
data_loader:
  settings:
    collaborator_count: 2
    batch_size: 4
  template: src.dataloader.TinyLoader
collaborator:
  template: openfl_cli.federation.collaborator.Collaborator
  defaults: plan/defaults/collaborator.yaml
aggregator:
  settings:
    rounds_to_train: 3   # short run
  template: openfl_cli.federation.aggregator.Aggregator
  defaults: plan/defaults/aggregator.yaml
"""


def plan_hash(root) -> str:
    return Plan.load(root / "plan/plan.yaml", None, None).hash


def test_hash_ignores_key_order_and_comments(make_workspace):
    first, second = plan_hash(make_workspace(PLAN)), plan_hash(make_workspace(REORDERED))
    assert first == second
    assert len(first) == 96  # sha384 hex


def test_hash_changes_with_any_value(make_workspace):
    base = plan_hash(make_workspace(PLAN))
    assert plan_hash(make_workspace(PLAN.replace("rounds_to_train: 3", "rounds_to_train: 4"))) != base
    assert plan_hash(make_workspace(PLAN.replace("batch_size: 4", "batch_size: 5"))) != base


def test_explicit_default_values_do_not_change_the_hash(make_workspace):
    # the resolved config holds every typed setting, stated or not
    explicit = PLAN.replace("    rounds_to_train: 3\n", "    rounds_to_train: 3\n    write_logs: true\n")
    assert plan_hash(make_workspace(explicit)) == plan_hash(make_workspace(PLAN))


def test_hash_sees_resolved_address(make_workspace):
    base = plan_hash(make_workspace(PLAN))
    resolved = PLAN.replace(
        "network:\n  defaults: plan/defaults/network.yaml\n",
        "network:\n  defaults: plan/defaults/network.yaml\n"
        "  settings: {agg_addr: h.example, agg_port: 50000}\n",
    )
    assert plan_hash(make_workspace(resolved)) != base


def test_canonical_hash_is_order_blind():
    assert canonical_hash({"a": 1, "b": {"c": [1, 2], "d": None}}) == canonical_hash(
        {"b": {"d": None, "c": [1, 2]}, "a": 1}
    )
    assert canonical_hash({"a": [1, 2]}) != canonical_hash({"a": [2, 1]})
