"""`ScriptTaskRunner`: a task runner that drives a user's training script through the Client API.

The collaborator sees an ordinary task runner: it loads the global model (`set_tensor_dict`) and calls
`train_task` / `validate_task`. Each task goes through the task-data filters to the script as an
`FLModel` over the local channel; the script's answer comes back through the task-result filters and
becomes a `ModelUpdate` shaped like the global model. The script is started on first use and keeps
running across rounds (it holds the site's model, optimizer and data between them), so the simulator
keeps one runner per collaborator (`one_per_collaborator`) and `close()` tells the script the job ended.

Paths (`script`, `initial_model`) are relative to the workspace: the `workspace` fx passes when it
builds the runner (the simulator does), else the current directory (which `fx collaborator start` and
`fx plan initialize` run in).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from openfl_cli.client.channel import Message
from openfl_cli.client.driver import ScriptDriver, ScriptError
from openfl_cli.client.filters import apply_filters, build_filters, build_object, read_only
from openfl_cli.client.model import FLModel, ParamsType
from openfl_cli.client.params import from_script, to_script
from openfl_cli.client.settings import ScriptSettings, sample_count
from openfl_cli.data.base import DataLoader
from openfl_cli.federation.update import ModelUpdate, split_tensors
from openfl_cli.runners.base import TaskRunner

__all__ = ["LoggedMetric", "ScriptDataLoader", "ScriptError", "ScriptTaskRunner"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoggedMetric:
    """A value the script sent with `flare.log`."""

    round: int | None
    name: str
    value: float
    meta: dict[str, Any] = field(default_factory=dict)


class ScriptDataLoader(DataLoader):
    """The data loader of a script runner: the script loads its own data. The site is the collaborator's
    name (a FedJob also writes it as the data path, `{site-1: site-1, ...}`); the sizes are the sample counts
    the script reported last (1 until it reports one)."""

    def __init__(self, data_path: str, **settings: Any) -> None:
        batch_size = settings.pop("batch_size", 1)
        collaborator_count = settings.pop("collaborator_count", None)
        super().__init__(data_path, batch_size, collaborator_count, **settings)
        self.train_size = 1
        self.valid_size = 1

    def get_train_loader(self, **kwargs: Any) -> Iterable[Any]:
        return ()

    def get_valid_loader(self, **kwargs: Any) -> Iterable[Any]:
        return ()

    def get_train_data_size(self) -> int:
        return self.train_size

    def get_valid_data_size(self) -> int:
        return self.valid_size


class ScriptTaskRunner(TaskRunner):
    """Runs `script` (with `script_args`) for a site and exchanges each task's model with it.

    `launch_external_process`: run it as `command script script_args` in a child process (in the
    workspace) instead of in a thread here. `framework`: what params look like to the script
    ("pytorch": tensors; "numpy", "tensorflow", "keras": NumPy arrays). `initial_model`: a `.pbuf`
    snapshot, the model before any round (for `fx plan initialize`). Filters: lists of
    `{template, settings}` applied to the task data and to the results, in order. `executor`: an
    object `{template, settings}` whose `execute(task_name, model, site_name)` answers the tasks here,
    instead of a script. `total_rounds`, `job_id`: what the script is told (default: not known; the
    workspace folder's name). `sites`: a site's own values of these settings, by site name.
    `workspace` is given by fx, not by the plan.
    """

    one_per_collaborator = True  # it holds a site's running script: never lend it to another site

    def __init__(
        self,
        data_loader: DataLoader | None,
        script: str | None = None,
        script_args: str | Sequence[str] = "",
        launch_external_process: bool = False,
        command: str = "python3 -u",
        framework: str = "pytorch",
        initial_model: str | None = None,
        task_data_filters: Sequence[Mapping[str, Any]] | None = (),
        task_result_filters: Sequence[Mapping[str, Any]] | None = (),
        round_timeout: float = 3600.0,
        close_timeout: float = 30.0,
        total_rounds: int | None = None,
        job_id: str | None = None,
        executor: Mapping[str, Any] | None = None,
        sites: Mapping[str, Mapping[str, Any]] | None = None,
        workspace: str | Path | None = None,
        **settings: Any,
    ) -> None:
        super().__init__(data_loader, **settings)
        if settings:
            log.warning("ScriptTaskRunner: ignoring the unknown settings %s", sorted(settings))
        self.workspace = Path(workspace) if workspace is not None else Path.cwd()
        common = {
            "script": script,
            "script_args": script_args,
            "launch_external_process": launch_external_process,
            "command": command,
            "framework": framework,
            "initial_model": initial_model,
            "task_data_filters": task_data_filters,
            "task_result_filters": task_result_filters,
            "executor": executor,
            "round_timeout": round_timeout,
            "close_timeout": close_timeout,
            "total_rounds": total_rounds,
            "job_id": job_id,
        }
        self.options = ScriptSettings.for_site(common, sites, self.site_name)
        self.job_id = self.options.job_id or self.workspace.resolve().name
        self._data_filters = build_filters(
            self.options.task_data_filters, "task_data_filters", self.workspace
        )
        self._result_filters = build_filters(
            self.options.task_result_filters, "task_result_filters", self.workspace
        )
        self._executor: Any = None
        self._driver: ScriptDriver | None = None
        if self.options.executor is not None:
            self._executor = build_object(self.options.executor, "executor", self.workspace, "execute")
        else:
            assert self.options.script is not None  # ScriptSettings checked it
            path = _resolve(self.workspace, self.options.script)
            self._driver = ScriptDriver(
                self.options, path, self.workspace, self.site_name, self.job_id, self._who(), self._record
            )
        self.logged: list[LoggedMetric] = []
        self._weights: dict[str, np.ndarray] | None = None
        self._task_name = "train"

    @property
    def site_name(self) -> str:
        loader = self.data_loader
        if loader is None:
            return "site"
        return str(loader.collaborator_name or loader.data_path)

    def _who(self) -> str:
        if self.options.executor is not None:
            return f"executor {self.options.executor.get('template')} at site {self.site_name}"
        return f"script {self.options.script} at site {self.site_name}"

    # --- tensors -----------------------------------------------------------------------------------
    def get_tensor_dict(self, with_opt_vars: bool = False) -> dict[str, np.ndarray]:
        """The weights held now (the last global model or trained result, else the initial model);
        the script keeps its optimizer state itself, so there are no optimizer tensors."""
        return {name: np.array(array, copy=True) for name, array in self._current().items()}

    def set_tensor_dict(self, tensors: Mapping[str, np.ndarray], with_opt_vars: bool = False) -> None:
        self._weights = split_tensors(tensors)[0]

    def reset_opt_vars(self) -> None:
        """Nothing to reset here: the optimizer lives in the script."""

    def _current(self) -> dict[str, np.ndarray]:
        if self._weights is None and self.options.initial_model:
            from openfl_cli.tensors.snapshot import load_snapshot

            snapshot = load_snapshot(_resolve(self.workspace, self.options.initial_model))
            self._weights = split_tensors(snapshot.tensors)[0]
        return self._weights if self._weights is not None else {}

    # --- tasks -------------------------------------------------------------------------------------
    def train_task(
        self,
        round_number: int,
        epochs: int = 1,
        metrics: Sequence[str] | None = None,
        task_name: str = "train",
        **kwargs: Any,
    ) -> ModelUpdate:
        """One round of the script's training on the global model (`epochs` is the script's choice)."""
        base = self._current()
        if not base:
            raise ScriptError(f"{self._who()}: no global model to train (no initial_model?)")
        result = self._exchange("train", round_number, task_name, base, kwargs.get("total_rounds"))
        weights = self._full_weights(result, base, round_number)
        count = self._sample_count(result)
        if isinstance(self.data_loader, ScriptDataLoader):
            self.data_loader.train_size = count
        selected = self._select(result.metrics or {}, metrics, task_name)
        self._report(task_name, round_number, selected)
        self._weights = weights
        return ModelUpdate(selected, count, weights, round_number=round_number)

    def validate_task(
        self,
        round_number: int,
        apply: str = "global",
        metrics: Sequence[str] | None = None,
        task_name: str = "validate",
        **kwargs: Any,
    ) -> ModelUpdate:
        """The script's metrics for the weights loaded now (`flare.is_evaluate()` is True for it)."""
        if apply not in ("global", "local"):
            raise ValueError(f"apply must be 'global' or 'local', got {apply!r}")
        base = self._current()
        result = self._exchange("evaluate", round_number, task_name, base, kwargs.get("total_rounds"))
        count = self._sample_count(result)
        if isinstance(self.data_loader, ScriptDataLoader):
            self.data_loader.valid_size = count
        selected = self._select(result.metrics or {}, metrics, task_name)
        self._report(task_name, round_number, selected)
        return ModelUpdate(selected, count, round_number=round_number)

    def train_epoch(self, round_number: int, **kwargs: Any) -> dict[str, float]:
        return self.train_task(round_number, **kwargs).metrics

    def validate_pass(self, round_number: int, **kwargs: Any) -> dict[str, float]:
        return self.validate_task(round_number, **kwargs).metrics

    def _exchange(
        self, task: str, round_number: int, task_name: str, base: Mapping[str, np.ndarray], total: Any
    ) -> FLModel:
        """`base` through the task-data filters to the script (or executor) as `task`; its answer
        through the task-result filters, params as NumPy arrays."""
        self._task_name = task_name
        global_view = read_only(base)  # filters and executors make new arrays, never change these
        outgoing = FLModel(
            params=dict(global_view),
            params_type=ParamsType.FULL,
            current_round=round_number,
            total_rounds=int(total) if total is not None else self.options.total_rounds,
            meta={"job_id": self.job_id, "site_name": self.site_name, "task_name": task_name},
        )
        outgoing = apply_filters(self._data_filters, outgoing, global_view, "task data")
        if self._driver is not None:
            incoming = self._driver.ask(task, round_number, outgoing)
        else:
            incoming = self._execute(task_name, outgoing)
        if incoming.params is not None:
            incoming = apply_filters(self._result_filters, incoming, global_view, "task result")
        return incoming

    def _execute(self, task_name: str, model: FLModel) -> FLModel:
        """An executor's answer: it gets params in the framework's type, as a script would."""
        framework = self.options.framework
        if model.params is not None:
            copies = {name: np.array(array, copy=True) for name, array in model.params.items()}
            model.params = to_script(copies, framework)
        answer = self._executor.execute(task_name, model, self.site_name)
        if not isinstance(answer, FLModel):
            raise ScriptError(f"{self._who()}: execute() returned {type(answer).__name__}, not an FLModel")
        if answer.params is not None:
            answer.params = from_script(answer.params, framework)
        return answer

    def _full_weights(
        self, result: FLModel, base: Mapping[str, np.ndarray], round_number: int
    ) -> dict[str, np.ndarray]:
        """Whole weights like the global model's (names, shapes, dtypes); a DIFF is added to it."""
        who = f"{self._who()}, round {round_number + 1}"
        if result.params is None:
            raise ScriptError(f"{who}: the model sent has no params")
        try:
            params = from_script(result.params, "numpy")  # filters may have made lists or scalars
        except ValueError as exc:
            raise ScriptError(f"{who}: {exc}") from None
        missing = [name for name in base if name not in params]
        extra = [name for name in params if name not in base]
        if missing or extra:
            parts = [f"lacks {missing}" if missing else "", f"has unknown {extra}" if extra else ""]
            raise ScriptError(f"{who}: the model sent {' and '.join(p for p in parts if p)} tensors")
        diff = result.params_type == ParamsType.DIFF
        weights: dict[str, np.ndarray] = {}
        for name, reference in base.items():
            value = params[name]
            if value.shape != reference.shape:
                raise ScriptError(
                    f"{who}: tensor {name!r} has shape {value.shape}, the global model's is {reference.shape}"
                )
            if diff:
                value = np.add(reference, value, dtype=np.result_type(reference, value))
            value = np.asarray(value, dtype=reference.dtype)
            weights[name] = value.copy() if np.may_share_memory(value, reference) else value
        return weights

    def _sample_count(self, result: FLModel) -> int:
        try:
            return sample_count(result.meta)
        except ValueError as exc:
            raise ScriptError(f"{self._who()}: {exc}") from None

    def _record(self, message: Message) -> None:
        """A `flare.log` message: kept in `logged`, logged, and given to the metric callback."""
        meta = {key: value for key, value in message.meta.items() if key != "key"}
        for name, value in message.metrics.items():
            self.logged.append(LoggedMetric(message.round, name, value, meta))
            log.info("%s: %s = %g (round %s)", self._who(), name, value, message.round)
            if self.log_metric_callback is not None:
                round_number = message.round if message.round is not None else 0
                self.log_metric_callback(self._task_name, name, round_number, value)

    def close(self) -> None:
        """Tell the script the job has ended and wait (bounded) for it to finish; see ScriptDriver."""
        if self._driver is not None:
            self._driver.close()


def _resolve(workspace: Path, path: str | Path) -> Path:
    given = Path(path)
    return given if given.is_absolute() else workspace / given
