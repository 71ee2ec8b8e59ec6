"""What `fx simulate` costs beside the same training written as a plain loop, measured in one run.

numpy/digits with N = 10, 100 and 1,000 simulated collaborators, 3 rounds: the simulator's wall seconds,
seconds per collaborator-task and peak RSS, against the floor: the same runner and data loader objects
driven by a plain loop (validate the global model, train, validate the local one, weighted mean by
sample count) over the same shards. torch/mnist with N = 100: the simulator's time per round against
the floor's (rounds after the first, whose time both spend building the collaborators' data loaders).
Each figure comes from a fresh child process, so that peak RSS is the configuration's own.

Targets: N = 1,000 in under 10 s and under 500 MB peak RSS, RSS at N = 1,000 within 1.5x of N = 10;
torch/mnist N = 100 per round within 1.3x of the floor.

    .venv/bin/python bench/simulate.py [--sizes 10 100 1000] [--rounds 3] [--torch-collaborators 100]
                                       [--torch-rounds 4] [--no-torch]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LIMIT_SECONDS_1000 = 10.0
LIMIT_RSS_MB_1000 = 500.0
LIMIT_RSS_RATIO = 1.5
LIMIT_TORCH_RATIO = 1.3


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# -- children ------------------------------------------------------------------------------------------


def child_simulation(workspace: Path, collaborators: int, rounds: int) -> dict[str, Any]:
    from openfl_cli.node.simulator import simulate
    from openfl_cli.utils.logs import setup_logging

    setup_logging("warning")
    round_seconds: list[float] = []

    class Reporter:
        interval = 5.0

        def round_closed(self, summary: Any) -> None:
            round_seconds.append(summary.seconds)

        def waiting(self, status: Any) -> None:
            pass

    _torch_single_thread()
    started = time.perf_counter()
    result = simulate(
        workspace / "plan/plan.yaml",
        workspace / "plan/cols.yaml",
        workspace / "plan/data.yaml",
        collaborators=collaborators,
        rounds=rounds,
        threads=1,
        reporter=Reporter(),
        show_progress=False,
    )
    seconds = time.perf_counter() - started
    assert result.finished, "the simulation did not finish"
    return {
        "seconds": seconds,
        "tasks": result.collaborator_tasks,
        "round_seconds": round_seconds,
        "rss_mb": peak_rss_mb(),
    }


def child_floor(workspace: Path, collaborators: int, rounds: int) -> dict[str, Any]:
    """The plain loop: the plan's own runner and loaders, no aggregator, collaborator or link."""
    import numpy as np

    from openfl_cli.plan import Plan
    from openfl_cli.tensors.snapshot import load_snapshot

    _torch_single_thread()
    plan = Plan.load(workspace / "plan/plan.yaml", None, None)
    spec = plan.experiment()
    tasks = spec.aggregator.tasks
    started = time.perf_counter()
    loader_spec = spec.data_loader.with_settings(collaborator_count=collaborators)
    loaders = [plan.build(loader_spec, {"data_path": str(i)}) for i in range(1, collaborators + 1)]
    runner = plan.build(spec.task_runner, {"data_loader": loaders[0]})
    model = load_snapshot(workspace / "save/init.pbuf").tensors
    built = time.perf_counter()
    round_seconds = []
    for round_number in range(rounds):
        round_started = time.perf_counter()
        sums = {name: np.zeros(array.shape, np.float64) for name, array in model.items()}
        total = 0
        for loader in loaders:
            runner.data_loader = loader
            runner.rebuild_model(model, "RESET", validation=True)
            runner.validate_task(round_number, **tasks["aggregated_model_validation"].kwargs)
            runner.rebuild_model(model, "RESET")
            update = runner.train_task(round_number, **tasks["train"].kwargs)
            runner.validate_task(round_number, **tasks["locally_tuned_model_validation"].kwargs)
            for name, array in update.weights.items():
                sums[name] += array * update.sample_count
            total += update.sample_count
        model = {name: (sums[name] / max(total, 1)).astype(model[name].dtype) for name in model}
        round_seconds.append(time.perf_counter() - round_started)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "setup_seconds": built - started,
        "tasks": 3 * collaborators * rounds,
        "round_seconds": round_seconds,
        "rss_mb": peak_rss_mb(),
    }


def _torch_single_thread() -> None:
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)


# -- parent --------------------------------------------------------------------------------------------


def run_child(kind: str, workspace: Path, collaborators: int, rounds: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", kind, str(workspace), str(collaborators), str(rounds)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"bench child {kind} N={collaborators} failed:\n{done.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    figures["process_seconds"] = time.perf_counter() - started
    return figures


def prepared_workspace(root: Path, template: str) -> Path:
    from openfl_cli.plan.initialize import initialize
    from openfl_cli.workspace.create import create_workspace

    workspace = create_workspace(root / template.replace("/", "_"), template)
    initialize(
        workspace / "plan/plan.yaml",
        workspace / "plan/cols.yaml",
        workspace / "plan/data.yaml",
        agg_addr="127.0.0.1",
    )
    return workspace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--torch-collaborators", type=int, default=100)
    parser.add_argument("--torch-rounds", type=int, default=4)
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument(
        "--child", nargs=4, metavar=("KIND", "WORKSPACE", "N", "ROUNDS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        kind, workspace, n, rounds = args.child
        child = child_simulation if kind == "simulate" else child_floor
        print(json.dumps(child(Path(workspace), int(n), int(rounds))))
        return

    verdicts: list[bool] = []
    with tempfile.TemporaryDirectory(prefix="fx-bench-sim-") as tmp:
        digits = prepared_workspace(Path(tmp), "numpy/digits")
        print(f"numpy/digits, {args.rounds} rounds, 3 tasks per collaborator and round, 1 thread")
        print(
            f"{'N':>6}  {'simulate s':>10}  {'process s':>9}  {'s/task':>9}  {'peak RSS':>9}  "
            f"{'floor s':>8}  {'floor RSS':>9}"
        )
        rss: dict[int, float] = {}
        for n in args.sizes:
            sim = run_child("simulate", digits, n, args.rounds)
            floor = run_child("floor", digits, n, args.rounds)
            rss[n] = sim["rss_mb"]
            print(
                f"{n:>6}  {sim['seconds']:>10.2f}  {sim['process_seconds']:>9.2f}  "
                f"{sim['seconds'] / sim['tasks'] * 1e3:>7.3f}ms  {sim['rss_mb']:>6.0f} MB  "
                f"{floor['seconds']:>8.2f}  {floor['rss_mb']:>6.0f} MB"
            )
            if n == 1000:
                ok = sim["seconds"] < LIMIT_SECONDS_1000 and sim["rss_mb"] < LIMIT_RSS_MB_1000
                verdicts.append(ok)
                print(
                    f"        N = 1,000: {sim['seconds']:.2f} s (< {LIMIT_SECONDS_1000:.0f} s), "
                    f"{sim['rss_mb']:.0f} MB (< {LIMIT_RSS_MB_1000:.0f} MB): {'met' if ok else 'MISSED'}"
                )
        if 10 in rss and 1000 in rss:
            ratio = rss[1000] / rss[10]
            verdicts.append(ratio <= LIMIT_RSS_RATIO)
            print(
                f"        RSS N = 1,000 / N = 10: {ratio:.2f}x (<= {LIMIT_RSS_RATIO}x): "
                f"{'met' if ratio <= LIMIT_RSS_RATIO else 'MISSED'}"
            )
        if not args.no_torch:
            mnist = prepared_workspace(Path(tmp), "torch/mnist")
            n, rounds = args.torch_collaborators, args.torch_rounds
            sim = run_child("simulate", mnist, n, rounds)
            floor = run_child("floor", mnist, n, rounds)
            sim_round = statistics.median(sim["round_seconds"][1:])
            floor_round = statistics.median(floor["round_seconds"][1:])
            ratio = sim_round / floor_round
            verdicts.append(ratio <= LIMIT_TORCH_RATIO)
            print(f"\ntorch/mnist, N = {n}, {rounds} rounds, 1 thread (torch intra-op threads: 1)")
            print(
                f"  simulator per round: {', '.join(f'{s:.2f}' for s in sim['round_seconds'])} s; "
                f"floor: {', '.join(f'{s:.2f}' for s in floor['round_seconds'])} s "
                f"(+{floor['setup_seconds']:.2f} s building loaders)"
            )
            print(
                f"  rounds after the first, median: {sim_round:.2f} s against {floor_round:.2f} s: "
                f"{ratio:.2f}x (<= {LIMIT_TORCH_RATIO}x): {'met' if ratio <= LIMIT_TORCH_RATIO else 'MISSED'}"
            )
    print("\nall targets met" if all(verdicts) else "\nsome targets MISSED")


if __name__ == "__main__":
    main()
