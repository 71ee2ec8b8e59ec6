"""`job.simulator_run(workspace, n_clients, threads, gpu)`: export the job into `workspace/<name>/` and
run it on the core simulator (`openfl_cli.node.simulator`), the real aggregator and collaborators in
one process, `threads` clients at a time on real threads.

The run happens with the exported workspace as the current folder, as `fx simulate` does when it is
run in a workspace, so the plan's relative paths (`src/train.py`, `save/...`) mean the same whatever
the caller's folder; the previous folder is restored afterwards.

`gpu="0,1"` spreads the clients over those CUDA devices, round-robin: site i gets
`device: "cuda:<id>"` in its own runner settings (`sites.<site>.device`) for this run only; the
exported plan names no device. PyTorch is imported only when `gpu` is given.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openfl_cli.errors import UsageError

if TYPE_CHECKING:
    from openfl_cli.federation.specs import ExperimentSpec
    from openfl_cli.job.job import FedJob
    from openfl_cli.node.simulator import SimulationResult


def simulator_run(
    job: FedJob,
    workspace: str | Path,
    n_clients: int | None = None,
    threads: int | None = None,
    gpu: str | None = None,
) -> SimulationResult:
    """Export and simulate `job`; returns the simulator's result. A failing client raises the
    simulator's FxError, which names the site and the cause."""
    _check_count("n_clients", n_clients)
    _check_count("threads", threads)
    devices = cuda_devices(gpu) if gpu is not None else []
    root = job.export_job(workspace, n_clients=n_clients)

    from openfl_cli.node.simulator import run_simulation, simulation_spec
    from openfl_cli.plan import Plan

    plan_dir = root / "plan"
    plan = Plan.load(plan_dir / "plan.yaml", plan_dir / "cols.yaml", plan_dir / "data.yaml")
    spec = simulation_spec(plan.experiment())
    if devices:
        spec = with_devices(spec, devices)
    sites = spec.aggregator.collaborators
    count = threads if threads is not None else min(len(sites), 2)
    with working_directory(root):
        return run_simulation(spec, plan, threads=count)


def _check_count(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise UsageError(f"simulator_run: {name} must be an integer >= 1, got {value!r}")


def cuda_devices(gpu: str) -> list[int]:
    """The CUDA device ids of `gpu` ("0" or "0,1"), checked against what PyTorch sees."""
    if not isinstance(gpu, str) or not gpu.strip():
        raise UsageError(f"simulator_run: gpu must be device ids like '0' or '0,1', got {gpu!r}")
    try:
        ids = [int(part) for part in gpu.split(",")]
    except ValueError:
        raise UsageError(f"simulator_run: gpu must be device ids like '0' or '0,1', got {gpu!r}") from None
    if any(index < 0 for index in ids) or len(set(ids)) != len(ids):
        raise UsageError(f"simulator_run: gpu must be distinct device ids >= 0, got {gpu!r}")
    try:
        import torch
    except ImportError:
        raise UsageError(
            f"simulator_run(gpu={gpu!r}): PyTorch is not installed, so no CUDA device is seen"
        ) from None
    if not torch.cuda.is_available():
        raise UsageError(f"simulator_run(gpu={gpu!r}): PyTorch sees no CUDA device on this machine")
    count = torch.cuda.device_count()
    absent = [index for index in ids if index >= count]
    if absent:
        raise UsageError(
            f"simulator_run(gpu={gpu!r}): no CUDA device {', '.join(map(str, absent))}; this machine has"
            f" {count} (0..{count - 1})"
        )
    return ids


def with_devices(spec: ExperimentSpec, devices: Sequence[int]) -> ExperimentSpec:
    """`spec` with site i's runner settings naming `cuda:<devices[i % len]>`."""
    settings: dict[str, Any] = dict(spec.task_runner.settings)
    overrides = {site: dict(values) for site, values in (settings.get("sites") or {}).items()}
    for index, site in enumerate(spec.aggregator.collaborators):
        overrides.setdefault(site, {})["device"] = f"cuda:{devices[index % len(devices)]}"
    return replace(spec, task_runner=spec.task_runner.with_settings(sites=overrides))


@contextmanager
def working_directory(folder: Path) -> Iterator[None]:
    previous = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)
