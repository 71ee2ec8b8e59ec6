"""OpenFL names mapped onto ours, so a plan written for OpenFL loads unchanged.

One table for class paths (templates) and one for renamed settings; nothing else in the plan
package knows OpenFL's names.
"""

from __future__ import annotations

_FED = "openfl_cli.federation"
_AGG = f"{_FED}.aggregation"
_STRAGGLER = f"{_FED}.straggler"
_PIPES = "openfl_cli.tensors.pipelines"

AGGREGATOR = f"{_FED}.aggregator.Aggregator"
COLLABORATOR = f"{_FED}.collaborator.Collaborator"
NETWORK = "openfl_cli.plan.schema.NetworkSettings"
RANDOM_ASSIGNER = f"{_FED}.assigner.RandomGroupedAssigner"
STATIC_ASSIGNER = f"{_FED}.assigner.StaticGroupedAssigner"
WAIT_FOR_ALL = f"{_STRAGGLER}.WaitForAllPolicy"
CUTOFF = f"{_STRAGGLER}.CutoffTimePolicy"
PERCENTAGE = f"{_STRAGGLER}.PercentagePolicy"
WEIGHTED_AVERAGE = f"{_AGG}.WeightedAverage"
NO_COMPRESSION = f"{_PIPES}.NoCompressionPipeline"

TEMPLATE_ALIASES: dict[str, str] = {
    "openfl.component.aggregator.Aggregator": AGGREGATOR,
    "openfl.component.Aggregator": AGGREGATOR,
    "openfl.component.collaborator.Collaborator": COLLABORATOR,
    "openfl.component.Collaborator": COLLABORATOR,
    "openfl.federation.Network": NETWORK,
    "openfl.component.RandomGroupedAssigner": RANDOM_ASSIGNER,
    "openfl.component.assigner.RandomGroupedAssigner": RANDOM_ASSIGNER,
    "openfl.component.StaticGroupedAssigner": STATIC_ASSIGNER,
    "openfl.component.assigner.StaticGroupedAssigner": STATIC_ASSIGNER,
    "openfl.pipelines.NoCompressionPipeline": NO_COMPRESSION,
    "openfl.pipelines.no_compression_pipeline.NoCompressionPipeline": NO_COMPRESSION,
    "openfl.federated.DataLoader": "openfl_cli.data.base.DataLoader",
    "openfl.federated.data.loader.DataLoader": "openfl_cli.data.base.DataLoader",
    "openfl.federated.TaskRunner": "openfl_cli.runners.base.TaskRunner",
    "openfl.federated.task.runner.TaskRunner": "openfl_cli.runners.base.TaskRunner",
}

# straggler policies: OpenFL moved them between modules and renamed them over releases
_STRAGGLER_NAMES = {
    "WaitForAllPolicy": WAIT_FOR_ALL,
    "CutoffTimeBasedStragglerHandling": CUTOFF,
    "CutoffPolicy": CUTOFF,
    "PercentageBasedStragglerHandling": PERCENTAGE,
    "PercentagePolicy": PERCENTAGE,
}
for _module in (
    "openfl.component.straggler_handling_functions",
    "openfl.component.aggregator.straggler_handling",
):
    for _name, _ours in _STRAGGLER_NAMES.items():
        TEMPLATE_ALIASES[f"{_module}.{_name}"] = _ours

for _name in ("WeightedAverage", "Median"):
    TEMPLATE_ALIASES[f"openfl.interface.aggregation_functions.{_name}"] = f"{_AGG}.{_name}"
TEMPLATE_ALIASES["openfl.interface.aggregation_functions.weighted_average.WeightedAverage"] = WEIGHTED_AVERAGE
TEMPLATE_ALIASES["openfl.interface.aggregation_functions.median.Median"] = f"{_AGG}.Median"

# section -> {OpenFL setting name: (our name, invert a boolean)}
SETTING_ALIASES: dict[str, dict[str, tuple[str, bool]]] = {
    "collaborator": {"delta_updates": ("use_delta_updates", False)},
    "network": {"tls": ("use_tls", False), "disable_client_auth": ("require_client_auth", True)},
}

# OpenFL settings we accept and ignore (they have no meaning here); a warning says so
IGNORED_SETTINGS: dict[str, frozenset[str]] = {
    "aggregator": frozenset({"log_memory_usage"}),
    "collaborator": frozenset({"log_memory_usage"}),
    "network": frozenset({"hash_salt", "enable_atomic_connections"}),
}


def canonical_template(template: str) -> str:
    """Our class path for `template` (itself when it is not an OpenFL name)."""
    return TEMPLATE_ALIASES.get(template, template)


def rename_settings(section: str, settings: dict[str, object]) -> dict[str, object]:
    """Rename OpenFL's settings of one file's section (before merging, so a plan's `tls` beats a
    defaults file's `use_tls`). Raises ValueError(key, message) on a clash or a non-boolean value."""
    renames = SETTING_ALIASES.get(section, {})
    if not any(key in renames for key in settings):
        return settings
    renamed: dict[str, object] = {}
    for key, value in settings.items():
        target, invert = renames.get(key, (key, False))
        if target in renamed or (target != key and target in settings):
            raise ValueError(key, f"given twice (as {target!r} and {key!r})")
        if target != key and not isinstance(value, bool):  # every renamed setting is a boolean
            raise ValueError(key, f"expected true or false, got {value!r}")
        renamed[target] = (not value) if invert else value
    return renamed
