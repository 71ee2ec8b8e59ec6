"""The TaskRunner contract: a framework-agnostic face of a model and its training code.

The collaborator only talks to this interface. Framework runners (`runners/torch.py`,
`runners/keras.py`, the plain NumPy runner of the `numpy/digits` template) implement the tensor
access and the two passes; users subclass those and override small hooks.

Tensors cross this boundary as `dict[str, numpy.ndarray]`, with stable names, their own dtype and
shape; optimizer state (for `opt_treatment: CONTINUE_GLOBAL`) is named with `OPT_PREFIX` in that flat
mapping. Tasks return a `ModelUpdate` (weights and optimizer state apart, metrics, sample count, round).
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openfl_cli.federation.update import OPT_PREFIX, ModelUpdate

if TYPE_CHECKING:
    import numpy as np

    from openfl_cli.data.base import DataLoader

__all__ = ["OPT_PREFIX", "OPT_TREATMENTS", "ModelUpdate", "TaskResult", "TaskRunner"]

OPT_TREATMENTS = ("RESET", "CONTINUE_LOCAL", "CONTINUE_GLOBAL")
LOADER_OPTIONS = ("batch_size",)  # task kwargs the framework runners hand to the data loader
# one metric, two spellings: fx's and OpenFL's PyTorch plans ask for `acc`, OpenFL's Keras plans (after
# Keras's own metric name) for `accuracy`; a runner reporting either answers both
METRIC_SYNONYMS = {"acc": "accuracy", "accuracy": "acc"}
MetricCallback = Callable[[str, str, int, float], None]  # (task name, metric name, round, value)


TaskResult = ModelUpdate  # the name tasks returned before the update type had one


class TaskRunner(ABC):
    """Base of every task runner.

    Subclasses implement: `get_tensor_dict`, `set_tensor_dict`, `reset_opt_vars`, `train_epoch`,
    `validate_pass`; optionally `save_native` / `load_native`.
    """

    def __init__(self, data_loader: DataLoader | None = None, **settings: Any) -> None:
        self.data_loader = data_loader
        self.settings = settings
        self.log_metric_callback: MetricCallback | None = None

    # --- tensors -------------------------------------------------------------------------------
    @abstractmethod
    def get_tensor_dict(self, with_opt_vars: bool = False) -> dict[str, np.ndarray]:
        """The model's weights (and optimizer state when asked) as named NumPy arrays (copies)."""

    @abstractmethod
    def set_tensor_dict(self, tensors: Mapping[str, np.ndarray], with_opt_vars: bool = False) -> None:
        """Load weights (and optimizer state when given and asked) into the model."""

    @abstractmethod
    def reset_opt_vars(self) -> None:
        """Reinitialize the optimizer state (opt_treatment RESET)."""

    # --- the two passes users write -------------------------------------------------------------
    @abstractmethod
    def train_epoch(self, round_number: int, **kwargs: Any) -> dict[str, float]:
        """Train one epoch over the local training data; return metrics (for example `loss`)."""

    @abstractmethod
    def validate_pass(self, round_number: int, **kwargs: Any) -> dict[str, float]:
        """Evaluate the current model on the local validation data; return metrics (for example `acc`)."""

    # --- plumbing the collaborator calls ---------------------------------------------------------
    def rebuild_model(
        self,
        tensors: Mapping[str, np.ndarray],
        opt_treatment: str = "RESET",
        validation: bool = False,
        *,
        weights_loaded: bool = False,
    ) -> None:
        """Load `tensors` (global or local) applying the plan's optimizer treatment.

        RESET clears the optimizer state; CONTINUE_LOCAL keeps this runner's own state; CONTINUE_GLOBAL
        also loads the optimizer tensors found in `tensors` (none exist before the first aggregation).
        Validation never touches the optimizer. `weights_loaded`: the runner holds exactly these weights
        already (the collaborator knows), so only the optimizer treatment is applied.
        """
        if opt_treatment not in OPT_TREATMENTS:
            raise ValueError(f"opt_treatment must be one of {OPT_TREATMENTS}, got {opt_treatment!r}")
        if opt_treatment == "RESET" and not validation:
            self.reset_opt_vars()
        with_opt = opt_treatment == "CONTINUE_GLOBAL" and not validation
        if with_opt or not weights_loaded:
            self.set_tensor_dict(tensors, with_opt_vars=with_opt)

    def train_task(
        self,
        round_number: int,
        epochs: int = 1,
        metrics: Sequence[str] | None = None,
        task_name: str = "train",
        **kwargs: Any,
    ) -> ModelUpdate:
        """Run `epochs` local epochs and return the trained weights and the last epoch's metrics."""
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        epoch_metrics: dict[str, float] = {}
        for _ in range(int(epochs)):
            epoch_metrics = self.train_epoch(round_number, **kwargs)
        selected = self._select(epoch_metrics, metrics, task_name)
        self._report(task_name, round_number, selected)
        return ModelUpdate.from_tensors(
            self.get_tensor_dict(with_opt_vars=True), selected, self.train_sample_count, round_number
        )

    def validate_task(
        self,
        round_number: int,
        apply: str = "global",
        metrics: Sequence[str] | None = None,
        task_name: str = "validate",
        **kwargs: Any,
    ) -> ModelUpdate:
        """Validate the weights currently loaded (the collaborator loads global or local ones)."""
        if apply not in ("global", "local"):
            raise ValueError(f"apply must be 'global' or 'local', got {apply!r}")
        selected = self._select(self.validate_pass(round_number, **kwargs), metrics, task_name)
        self._report(task_name, round_number, selected)
        return ModelUpdate(selected, self.valid_sample_count, round_number=round_number)

    @property
    def train_sample_count(self) -> int:
        return int(self.data_loader.get_train_data_size()) if self.data_loader else 0

    @property
    def valid_sample_count(self) -> int:
        return int(self.data_loader.get_valid_data_size()) if self.data_loader else 0

    def close(self) -> None:  # noqa: B027 - an optional hook, not an abstract method
        """Release what the runner holds beyond its model once its collaborator's work has ended (a
        running training script, for `ScriptTaskRunner`). Called once at the end; nothing here."""

    # --- native models --------------------------------------------------------------------------
    def save_native(self, path: str | Path) -> Path:
        """Write the model in its framework's own format; return the path written."""
        raise NotImplementedError(f"{type(self).__name__} does not implement save_native()")

    def load_native(self, path: str | Path) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not implement load_native()")

    # --- helpers ---------------------------------------------------------------------------------
    def loader_batches(self, split: str, task_kwargs: Mapping[str, Any]) -> Any:
        """The data loader's `train` or `valid` batches, given the task's loader options that its
        `get_<split>_loader` accepts (`batch_size`: OpenFL's Keras tasks set one per task)."""
        if self.data_loader is None:
            raise RuntimeError(f"{type(self).__name__} has no data loader")
        method = getattr(self.data_loader, f"get_{split}_loader")
        return method(**self.loader_options(task_kwargs, method))

    @staticmethod
    def loader_options(
        task_kwargs: Mapping[str, Any], method: Callable[..., Any] | None = None
    ) -> dict[str, Any]:
        """What of a task's kwargs goes on to the data loader: those of LOADER_OPTIONS that `method`
        (a `get_*_loader`) takes, all of them when it takes **kwargs or is not given."""
        options = {key: task_kwargs[key] for key in LOADER_OPTIONS if key in task_kwargs}
        if method is None or not options:
            return options
        try:
            params = inspect.signature(method).parameters
        except (TypeError, ValueError):
            return options
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            return options
        return {key: value for key, value in options.items() if key in params}

    @staticmethod
    def _select(found: Mapping[str, float], wanted: Sequence[str] | None, task_name: str) -> dict[str, float]:
        if not wanted:
            return dict(found)
        known = {**{alias: found[name] for alias, name in METRIC_SYNONYMS.items() if name in found}, **found}
        missing = [name for name in wanted if name not in known]
        if missing:
            raise KeyError(
                f"task {task_name!r} asked for metrics {missing} but the runner produced {sorted(found)}"
            )
        return {name: known[name] for name in wanted}

    def _report(self, task_name: str, round_number: int, metrics: Mapping[str, float]) -> None:
        if self.log_metric_callback is not None:
            for name, value in metrics.items():
                self.log_metric_callback(task_name, name, round_number, float(value))
