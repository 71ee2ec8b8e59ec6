"""Typed specs of an experiment: what every front end (a plan, a FedJob, a flow) produces and what
`openfl_cli.node` builds live participants from.

Specs are plain, validated, immutable data. Parts written by users (data loader, task runner, assigner,
aggregation functions, ...) are `ComponentSpec`s: a dotted class path and its settings, built by a
`ComponentBuilder` that the front end provides (the plan's imports `src.` modules from its workspace and
names the plan key in its errors). Paths are kept as written, relative to `ExperimentSpec.workspace`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from openfl_cli.transport.messages import TaskSpec

OPT_TREATMENTS = ("RESET", "CONTINUE_LOCAL", "CONTINUE_GLOBAL")
TRAINING_FUNCTIONS = ("train_task", "train", "train_batches", "train_epoch")


def is_training(function: str) -> bool:
    return function in TRAINING_FUNCTIONS


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass(frozen=True)
class ComponentSpec:
    """A part built by importing `template` and calling it with `settings` (plus injected arguments).
    `key` is where it is declared (for example `("tasks", "train", "aggregation_type")`), for errors."""

    key: tuple[str, ...]
    template: str
    settings: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _require(bool(self.key), "a component needs the key it is declared under")
        _require(
            isinstance(self.template, str) and "." in self.template,
            f"{'.'.join(self.key)}: template must be a dotted path, got {self.template!r}",
        )
        object.__setattr__(self, "settings", dict(self.settings))

    def with_settings(self, **changes: Any) -> ComponentSpec:
        return replace(self, settings={**self.settings, **changes})


class ComponentBuilder(Protocol):
    """Builds the components of one front end (the plan's builder checks settings against signatures
    and raises errors naming the file and key)."""

    def build(
        self,
        component: ComponentSpec,
        injected: Mapping[str, Any] | None = None,
        optional_injected: Mapping[str, Any] | None = None,
    ) -> Any: ...

    def import_callable(self, dotted: str, key: tuple[str, ...]) -> Callable[..., Any]: ...


@dataclass(frozen=True)
class NetworkSpec:
    agg_addr: str
    agg_port: int | str
    bind_addr: str = "0.0.0.0"
    use_tls: bool = True
    require_client_auth: bool = True
    reconnect_interval: float = 5.0
    reconnect_timeout: float = 600.0
    cert_folder: str = "cert"

    def __post_init__(self) -> None:
        _require(self.reconnect_interval > 0, "network: reconnect_interval must be > 0")
        _require(self.reconnect_timeout > 0, "network: reconnect_timeout must be > 0")

    @property
    def resolved(self) -> bool:
        """True once `auto` address and port were replaced by real ones (`fx plan initialize`)."""
        return self.agg_addr != "auto" and self.agg_port != "auto"


@dataclass(frozen=True)
class BestModelSpec:
    """The model kept as `best`: the one that scored best on `metric` of `task`."""

    task: str = "aggregated_model_validation"
    metric: str = "acc"
    higher_is_better: bool = True


@dataclass(frozen=True)
class OutputsSpec:
    """What the aggregator writes; paths relative to the workspace."""

    init_path: str = "save/init.pbuf"
    last_path: str = "save/last.pbuf"
    best_path: str = "save/best.pbuf"
    best: BestModelSpec = field(default_factory=BestModelSpec)
    write_logs: bool = True
    logs_dir: str = "logs"
    persist_checkpoint: bool = True  # commit every round to `persistent_db`, so a restart resumes
    persistent_db: str = "local_state/tensor.db"
    db_store_rounds: int = 2
    save_native_model: bool = False  # also the framework's own format at the end, at native_model_path
    native_model_path: str = "save/native"
    metric_callback: str | None = None  # dotted f(node, task, metric, round, value)

    def __post_init__(self) -> None:
        _require(self.db_store_rounds >= 1, "outputs: db_store_rounds must be >= 1")


@dataclass(frozen=True)
class AggregatorSpec:
    plan_hash: str
    collaborators: tuple[str, ...]
    rounds_to_train: int
    tasks: Mapping[str, TaskSpec]
    aggregation: Mapping[str, ComponentSpec]  # task -> its aggregation function (absent: weighted mean)
    assigner: ComponentSpec
    straggler: ComponentSpec
    outputs: OutputsSpec = field(default_factory=OutputsSpec)
    opt_treatment: str = "RESET"
    use_delta_updates: bool = False
    name: str = "aggregator"

    def __post_init__(self) -> None:
        object.__setattr__(self, "collaborators", tuple(self.collaborators))
        _require(
            not isinstance(self.rounds_to_train, bool) and int(self.rounds_to_train) >= 1,
            f"aggregator: rounds_to_train must be an integer >= 1, got {self.rounds_to_train!r}",
        )
        _require(
            len(set(self.collaborators)) == len(self.collaborators), "aggregator: duplicate collaborators"
        )
        _require(self.opt_treatment in OPT_TREATMENTS, f"opt_treatment must be one of {OPT_TREATMENTS}")
        unknown = sorted(set(self.aggregation) - set(self.tasks))
        _require(not unknown, f"aggregation given for tasks that do not exist: {unknown}")

    @property
    def best_task_judges_start_model(self) -> bool:
        """Whether the best-metric task scores the model the round started with (a global validation),
        so that model is the one kept as best."""
        task = self.tasks.get(self.outputs.best.task)
        if task is None:
            return True
        if is_training(task.function):  # unless its metrics say they score the model received
            return task.kwargs.get("metrics_judge") == "received_model"
        return task.kwargs.get("apply", "global") == "global"


@dataclass(frozen=True)
class CollaboratorSpec:
    name: str
    plan_hash: str
    data_loader: ComponentSpec
    data_path: str
    task_runner: ComponentSpec
    compression: ComponentSpec | None = None
    opt_treatment: str = "RESET"
    use_delta_updates: bool = False
    training_task: TaskSpec | None = None  # what a restarted collaborator reruns to validate locally
    metric_callback: str | None = None

    def __post_init__(self) -> None:
        _require(bool(self.name), "a collaborator needs a name")
        _require(self.opt_treatment in OPT_TREATMENTS, f"opt_treatment must be one of {OPT_TREATMENTS}")


@dataclass(frozen=True)
class ExperimentSpec:
    """A whole experiment: the aggregator, and what every collaborator is built from."""

    workspace: Path
    aggregator: AggregatorSpec
    network: NetworkSpec
    data_loader: ComponentSpec
    task_runner: ComponentSpec
    compression: ComponentSpec | None = None
    data_paths: Mapping[str, str] = field(default_factory=dict)
    collaborator_metric_callback: str | None = None
    # settings a front end carries along unchanged (a plan's `tasks.settings`, ...)
    extra: Mapping[str, Any] = field(default_factory=dict)
    source: str = "plan/plan.yaml"  # where the experiment was declared, for errors

    @property
    def plan_hash(self) -> str:
        return self.aggregator.plan_hash

    @property
    def collaborators(self) -> tuple[str, ...]:
        return self.aggregator.collaborators

    def resolve(self, path: str | Path) -> Path:
        given = Path(path)
        return given if given.is_absolute() else self.workspace / given

    def collaborator(self, name: str, data_path: str | None = None) -> CollaboratorSpec:
        """Collaborator `name`'s spec; `data_path` overrides its entry in the data paths."""
        if data_path is None:
            if name not in self.data_paths:
                raise KeyError(name)
            data_path = self.data_paths[name]
        training = next((task for task in self.aggregator.tasks.values() if is_training(task.function)), None)
        return CollaboratorSpec(
            name=name,
            plan_hash=self.plan_hash,
            data_loader=self.data_loader,
            data_path=data_path,
            task_runner=self.task_runner,
            compression=self.compression,
            opt_treatment=self.aggregator.opt_treatment,
            use_delta_updates=self.aggregator.use_delta_updates,
            training_task=training,
            metric_callback=self.collaborator_metric_callback,
        )
