"""fx: a plan-driven federated learning toolkit.

Only light names live here so that `import openfl_cli` (and `fx --help`) stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from openfl_cli.node.simulator import SimulationResult
    from openfl_cli.runners.base import TaskRunner


def get_model(
    plan_config: str = "plan/plan.yaml",
    cols_config: str = "plan/cols.yaml",
    data_config: str = "plan/data.yaml",
    model_protobuf_path: str | None = None,
    **kwargs: Any,
) -> TaskRunner:
    """Return the plan's task runner loaded with the weights of a `.pbuf` snapshot."""
    from openfl_cli.workspace.model import get_model as _get_model

    return _get_model(plan_config, cols_config, data_config, model_protobuf_path, **kwargs)


def simulate(
    plan_config: str = "plan/plan.yaml",
    cols_config: str = "plan/cols.yaml",
    data_config: str = "plan/data.yaml",
    *,
    collaborators: int | None = None,
    rounds: int | None = None,
    threads: int = 1,
) -> SimulationResult:
    """Run the workspace's whole experiment in this process, as `fx simulate` does."""
    from openfl_cli.node.simulator import simulate as _simulate

    return _simulate(
        plan_config, cols_config, data_config, collaborators=collaborators, rounds=rounds, threads=threads
    )


__all__ = ["__version__", "get_model", "simulate"]
