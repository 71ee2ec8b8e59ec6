"""OpenFL names mapped onto ours, so a plan written for OpenFL loads unchanged.

One table for class paths (templates), one for the OpenFL classes fx does not implement, and one for
renamed settings; nothing else in the plan package knows OpenFL's names. The names are those OpenFL
1.9 exports (`openfl.component`, `openfl.pipelines`, `openfl.interface.aggregation_functions`,
`openfl.federated`) and the module paths they live in, older releases' names included.
"""

from __future__ import annotations

from openfl_cli.plan.files import did_you_mean

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
MEDIAN = f"{_AGG}.Median"
FEDCURV = f"{_AGG}.FedCurvWeightedAverage"
NO_COMPRESSION = f"{_PIPES}.NoCompressionPipeline"
DATA_LOADER = "openfl_cli.data.base.DataLoader"
TASK_RUNNER = "openfl_cli.runners.base.TaskRunner"
KERAS_RUNNER = "openfl_cli.runners.keras.KerasTaskRunner"
TORCH_RUNNER = "openfl_cli.runners.torch.PyTorchTaskRunner"


def _spellings(ours: str, *names: str) -> dict[str, str]:
    return dict.fromkeys(names, ours)


TEMPLATE_ALIASES: dict[str, str] = {
    **_spellings(
        AGGREGATOR,
        "openfl.component.Aggregator",
        "openfl.component.aggregator.Aggregator",
        "openfl.component.aggregator.aggregator.Aggregator",
    ),
    **_spellings(
        COLLABORATOR,
        "openfl.component.Collaborator",
        "openfl.component.collaborator.Collaborator",
        "openfl.component.collaborator.collaborator.Collaborator",
    ),
    "openfl.federation.Network": NETWORK,
    **_spellings(
        RANDOM_ASSIGNER,
        "openfl.component.RandomGroupedAssigner",
        "openfl.component.assigner.RandomGroupedAssigner",
        "openfl.component.assigner.random_grouped_assigner.RandomGroupedAssigner",
    ),
    **_spellings(
        STATIC_ASSIGNER,
        "openfl.component.StaticGroupedAssigner",
        "openfl.component.assigner.StaticGroupedAssigner",
        "openfl.component.assigner.static_grouped_assigner.StaticGroupedAssigner",
    ),
    **_spellings(
        NO_COMPRESSION,
        "openfl.pipelines.NoCompressionPipeline",
        "openfl.pipelines.no_compression_pipeline.NoCompressionPipeline",
    ),
    **_spellings(
        DATA_LOADER,
        "openfl.federated.DataLoader",
        "openfl.federated.data.DataLoader",
        "openfl.federated.data.loader.DataLoader",
    ),
    **_spellings(
        TASK_RUNNER,
        "openfl.federated.TaskRunner",
        "openfl.federated.task.TaskRunner",
        "openfl.federated.task.runner.TaskRunner",
    ),
    **_spellings(
        KERAS_RUNNER,
        "openfl.federated.KerasTaskRunner",
        "openfl.federated.task.KerasTaskRunner",
        "openfl.federated.task.runner_keras.KerasTaskRunner",
    ),
    **_spellings(
        TORCH_RUNNER,
        "openfl.federated.PyTorchTaskRunner",
        "openfl.federated.task.PyTorchTaskRunner",
        "openfl.federated.task.runner_pt.PyTorchTaskRunner",
    ),
}

# straggler policies: OpenFL moved them between modules and renamed them over releases
_STRAGGLER_NAMES = {
    "WaitForAllPolicy": WAIT_FOR_ALL,
    "CutoffTimeBasedStragglerHandling": CUTOFF,
    "CutoffPolicy": CUTOFF,
    "CutoffTimePolicy": CUTOFF,
    "PercentageBasedStragglerHandling": PERCENTAGE,
    "PercentagePolicy": PERCENTAGE,
}
for _module in (
    "openfl.component",
    "openfl.component.aggregator",
    "openfl.component.straggler_handling_functions",
    "openfl.component.aggregator.straggler_handling",
):
    for _name, _ours in _STRAGGLER_NAMES.items():
        TEMPLATE_ALIASES[f"{_module}.{_name}"] = _ours

_AGGREGATION_MODULE = "openfl.interface.aggregation_functions"
# class -> (its module under openfl.interface.aggregation_functions, ours)
_AGGREGATION_NAMES = {
    "WeightedAverage": ("weighted_average", WEIGHTED_AVERAGE),
    "Median": ("median", MEDIAN),
    "FedCurvWeightedAverage": ("fedcurv_weighted_average", FEDCURV),
}
for _name, (_module, _ours) in _AGGREGATION_NAMES.items():
    TEMPLATE_ALIASES[f"{_AGGREGATION_MODULE}.{_name}"] = _ours
    TEMPLATE_ALIASES[f"{_AGGREGATION_MODULE}.{_module}.{_name}"] = _ours

# OpenFL classes fx has no counterpart for: name -> what to use instead ("" when nothing is close)
_INSTEAD_ADAPTIVE = "fx's server optimizers are openfl_cli.federation.aggregation.FedAdam and FedAvgM"
_INSTEAD_PIPELINE = (
    "fx's pipelines are openfl_cli.tensors.pipelines.NoCompressionPipeline, SparsityPipeline"
    " and QuantizationPipeline"
)
_PIPELINES = "openfl.pipelines"
_FEDERATED_TASK = "openfl.federated.task"
_FEDERATED_DATA = "openfl.federated.data"
# (the spellings of one OpenFL class: its package export, its module path; what to use instead)
_NOT_IMPLEMENTED_CLASSES: list[tuple[tuple[str, ...], str]] = [
    *(
        ((f"{_AGGREGATION_MODULE}.{name}", f"{_AGGREGATION_MODULE}.{module}.{name}"), instead)
        for name, module, instead in (
            ("AdagradAdaptiveAggregation", "adagrad_adaptive_aggregation", _INSTEAD_ADAPTIVE),
            ("AdamAdaptiveAggregation", "adam_adaptive_aggregation", _INSTEAD_ADAPTIVE),
            ("YogiAdaptiveAggregation", "yogi_adaptive_aggregation", _INSTEAD_ADAPTIVE),
            ("GeometricMedian", "geometric_median", f"fx's robust functions are {MEDIAN} and TrimmedMean"),
            ("SecureWeightedAverage", "secure_weighted_average", ""),
            ("FedBaggingXGBoost", "fed_bagging", ""),
            ("AggregationFunction", "core", f"subclass {_AGG}.AggregationFunction"),
        )
    ),
    *(
        ((f"{_PIPELINES}.{name}", f"{_PIPELINES}.{module}.{name}"), _INSTEAD_PIPELINE)
        for name, module in (
            ("KCPipeline", "kc_pipeline"),
            ("SKCPipeline", "skc_pipeline"),
            ("STCPipeline", "stc_pipeline"),
            ("RandomShiftPipeline", "random_shift_pipeline"),
            ("EdenPipeline", "eden_pipeline"),
        )
    ),
    (
        (
            "openfl.component.ConnectorFlower",
            "openfl.component.connector.ConnectorFlower",
            "openfl.component.connector.connector_flower.ConnectorFlower",
        ),
        "",
    ),
    (
        ("openfl.component.Assigner", "openfl.component.assigner.assigner.Assigner"),
        "use openfl.component.RandomGroupedAssigner or StaticGroupedAssigner",
    ),
    (
        (
            "openfl.component.StragglerPolicy",
            "openfl.component.aggregator.straggler_handling.StragglerPolicy",
        ),
        "use openfl.component.WaitForAllPolicy, CutoffTimePolicy or PercentagePolicy",
    ),
    *(
        ((f"openfl.federated.{name}", f"{package}.{name}", f"{package}.{module}.{name}"), instead)
        for name, package, module, instead in (
            ("XGBoostTaskRunner", _FEDERATED_TASK, "runner_xgb", ""),
            ("FlowerTaskRunner", _FEDERATED_TASK, "runner_flower", ""),
            ("GaNDLFTaskRunner", _FEDERATED_TASK, "runner_gandlf", ""),
            ("XGBoostDataLoader", _FEDERATED_DATA, "loader_xgb", ""),
            ("FlowerDataLoader", _FEDERATED_DATA, "loader_flower", ""),
            ("KerasDataLoader", _FEDERATED_DATA, "loader_keras", f"subclass {DATA_LOADER}"),
            ("PyTorchDataLoader", _FEDERATED_DATA, "loader_pt", f"subclass {DATA_LOADER}"),
        )
    ),
    # the template of OpenFL 1.9's defaults/task_runner.yaml, which every plan replaces by its own
    (("openfl.federated.task_runner.CoreTaskRunner",), f"name your task runner (a {TASK_RUNNER})"),
]
NOT_IMPLEMENTED: dict[str, str] = {
    spelling: instead for spellings, instead in _NOT_IMPLEMENTED_CLASSES for spelling in spellings
}

OPENFL_PREFIX = "openfl."

# section -> {OpenFL setting name: (our name, invert a boolean)}
SETTING_ALIASES: dict[str, dict[str, tuple[str, bool]]] = {
    "collaborator": {"delta_updates": ("use_delta_updates", False)},
    "network": {"tls": ("use_tls", False), "disable_client_auth": ("require_client_auth", True)},
}

# OpenFL settings we accept and ignore (they have no meaning here), with OpenFL's default value: a
# warning says so when a plan sets another value (its defaults files carry them all)
IGNORED_SETTINGS: dict[str, dict[str, object]] = {
    "aggregator": {"log_memory_usage": False},
    "collaborator": {"log_memory_usage": False},
    "network": {"hash_salt": "auto", "enable_atomic_connections": False},
}

# OpenFL settings whose one value fx supports is what fx does anyway: that value is accepted (in any
# case, as OpenFL reads it) and dropped, any other refused. section -> {setting: (value, refusal)}
FIXED_SETTINGS: dict[str, dict[str, tuple[str, str]]] = {
    "network": {
        "transport_protocol": ("grpc", "fx speaks gRPC only (OpenFL's 'rest' transport is not implemented)"),
    },
}


def canonical_template(template: str) -> str:
    """Our class path for `template` (itself when it is not an OpenFL name).

    Raises ValueError for an OpenFL name fx does not implement, or one it does not know (with a
    did-you-mean over the OpenFL names it maps).
    """
    ours = TEMPLATE_ALIASES.get(template)
    if ours is not None:
        return ours
    if template in NOT_IMPLEMENTED:
        instead = NOT_IMPLEMENTED[template]
        raise ValueError(f"fx does not implement OpenFL's {template}" + (f"; {instead}" if instead else ""))
    if template.startswith(OPENFL_PREFIX):
        known = [*TEMPLATE_ALIASES, *NOT_IMPLEMENTED]
        raise ValueError(
            f"{template!r} is not an OpenFL class that fx knows{did_you_mean(template, known)};"
            " name one of fx's own classes (see plan_defaults/) instead"
        )
    return template


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
