"""`fx model save` and `openfl_cli.get_model`: a plan's task runner loaded with a snapshot."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from openfl_cli.errors import PATH_ERRORS, FxError, UsageError

if TYPE_CHECKING:
    import numpy as np

    from openfl_cli.data.base import DataLoader
    from openfl_cli.plan import Plan
    from openfl_cli.runners.base import TaskRunner


def get_model(
    plan_config: str | Path = "plan/plan.yaml",
    cols_config: str | Path = "plan/cols.yaml",
    data_config: str | Path = "plan/data.yaml",
    model_protobuf_path: str | Path | None = None,
    collaborator_name: str | None = None,
) -> TaskRunner:
    """Build the plan's task runner and load the weights of the snapshot `model_protobuf_path`.

    The data loader is the one of `collaborator_name`, else of the first collaborator in the data
    file; with none it gets data path `1` (the first shard of the bundled templates), as
    `fx plan initialize` does. Without a snapshot the runner keeps its initial weights.
    """
    from openfl_cli.plan import Plan

    snapshot_path = _existing_snapshot(model_protobuf_path) if model_protobuf_path is not None else None
    plan = Plan.load(plan_config, cols_config, data_config)
    runner = plan.build_task_runner(_data_loader(plan, collaborator_name))
    if snapshot_path is not None:
        load_snapshot_into(runner, snapshot_path)
    return runner


def save_model(
    model_protobuf_path: str | Path,
    output_path: str | Path,
    plan_config: str | Path = "plan/plan.yaml",
    cols_config: str | Path = "plan/cols.yaml",
    data_config: str | Path = "plan/data.yaml",
) -> Path:
    """Write the snapshot's model in the runner's native format; return the path written.

    The data loader is built only if the task runner asks it for something while building its model:
    saving weights needs no data set.
    """
    runner = _model_only_runner(plan_config, cols_config, data_config, model_protobuf_path)
    try:
        written = runner.save_native(output_path)
    except NotImplementedError as error:
        raise FxError(str(error)) from None
    except OSError as error:  # a folder that is a file, no permission, a full disk: one line
        kind = UsageError if isinstance(error, PATH_ERRORS) else FxError
        raise kind(f"-o {output_path}: cannot write the model: {error}") from None
    return Path(written if written is not None else output_path)


def _model_only_runner(
    plan_config: str | Path, cols_config: str | Path, data_config: str | Path, snapshot: str | Path
) -> TaskRunner:
    from openfl_cli.data.deferred import DeferredDataLoader
    from openfl_cli.plan import Plan

    snapshot_path = _existing_snapshot(snapshot)
    plan = Plan.load(plan_config, cols_config, data_config)
    plan.check_templates()
    runner = plan.build_task_runner(DeferredDataLoader(lambda: _data_loader(plan, None)))
    load_snapshot_into(runner, snapshot_path)
    return runner


def _data_loader(plan: Plan, collaborator_name: str | None) -> DataLoader:
    """The loader of `collaborator_name`, else of the first collaborator in the data file, else of
    data path `1` (the first shard of the bundled templates)."""
    name = collaborator_name or next(iter(plan.data_paths), None)
    return plan.build_data_loader(name) if name else plan.build_data_loader("", data_path="1")


def load_snapshot_into(runner: TaskRunner, snapshot_path: str | Path) -> None:
    """Load a snapshot's weights into `runner` after checking tensor names and shapes."""
    from openfl_cli.tensors.snapshot import load_snapshot

    tensors = load_snapshot(snapshot_path).tensors
    check_compatible(runner.get_tensor_dict(with_opt_vars=False), tensors, snapshot_path)
    runner.set_tensor_dict(tensors, with_opt_vars=False)


def check_compatible(
    expected: Mapping[str, np.ndarray], found: Mapping[str, np.ndarray], source: str | Path
) -> None:
    """Raise UsageError naming the differences when `found` cannot be loaded as `expected`.

    Optimizer tensors in the snapshot are ignored: only the model's weights are loaded.
    """
    from openfl_cli.federation.update import is_optimizer_tensor

    weights = {name for name in found if not is_optimizer_tensor(name)}
    problems = []
    if missing := sorted(set(expected) - weights):
        problems.append(f"missing tensors {_few(missing)}")
    if unexpected := sorted(weights - set(expected)):
        problems.append(f"unexpected tensors {_few(unexpected)}")
    for name in sorted(set(expected) & weights):
        if tuple(found[name].shape) != tuple(expected[name].shape):
            problems.append(
                f"tensor {name!r} has shape {tuple(found[name].shape)}, the model expects "
                f"{tuple(expected[name].shape)}"
            )
    if problems:
        raise UsageError(f"snapshot {source} does not match the plan's model: {'; '.join(problems[:3])}")


def _existing_snapshot(path: str | Path) -> Path:
    snapshot = Path(path)
    if not snapshot.is_file():
        raise UsageError(f"snapshot {path} not found")
    return snapshot


def _few(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(repr(name) for name in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
