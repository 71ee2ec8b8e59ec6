"""`fx model save` and `openfl_cli.get_model`: a plan's task runner loaded with a snapshot."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from openfl_cli.errors import FxError, UsageError

if TYPE_CHECKING:
    import numpy as np

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
    name = collaborator_name or next(iter(plan.data_paths), None)
    loader = plan.build_data_loader(name) if name else plan.build_data_loader("", data_path="1")
    runner = plan.build_task_runner(loader)
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
    """Write the snapshot's model in the runner's native format; return the path written."""
    runner = get_model(plan_config, cols_config, data_config, model_protobuf_path)
    try:
        written = runner.save_native(output_path)
    except NotImplementedError as error:
        raise FxError(str(error)) from None
    return Path(written if written is not None else output_path)


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
