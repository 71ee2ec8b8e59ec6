"""The Workflow API's LocalRuntime: wall time, peak memory and the runtime's own share, for the seed's
flow shape (validate, train, validate locally on every collaborator, then a join that averages).

The model is a dict of NumPy arrays: a small one (about 100 KB) and a 50 MB one. N = 4, 16 and 64
collaborators, 2 rounds, on the single_process and ray backends; the 50 MB runs join both ways: the
seed's own `FedAvg([input.model for input in inputs])`, which holds every input's model at once, and
the streaming `fedavg(inputs, "model")`. Each run is a fresh child process; its peak RSS is sampled over
the child and every process under it (Ray's workers included) every 50 ms; on Ray that sum counts the
pages of the shared object store once in every process that maps them, so it overstates the memory used.

Targets (single_process, 50 MB, N = 64; OpenFL 1.9 here took 335 s and 7.2 GB): the seed's join under
N x model + 600 MB, the streaming join under 1 GB, wall time under a third of OpenFL's in both; and the
runtime's own time under 10 % of the total for the small model at N = 16.

    .venv/bin/python bench/workflow.py [--sizes 4 16 64] [--backends single_process ray] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OPENFL_SECONDS, OPENFL_PEAK_GB = 335.0, 7.2
MB = 1 << 20
SMALL_ELEMENTS = 25_000  # float32: 100 KB
LARGE_ELEMENTS = 50 * MB // 4  # float32: 50 MB
# epochs of the train step's logistic regression on a 2048-sample shard: about 20 ms of its own compute
# here, a light stand-in for the seed's real training (a CNN over an MNIST shard takes seconds)
EPOCHS = 200


def child(backend: str, n: int, rounds: int, elements: int, join: str) -> dict[str, Any]:
    import numpy as np

    from openfl_cli.workflow import Aggregator, Collaborator, FLSpec, LocalRuntime, aggregator, collaborator
    from openfl_cli.workflow import fedavg as streaming_fedavg

    def seed_fedavg(models: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """The seed's FedAvg: every model held at once (summed pairwise, not stacked into one array)."""
        return {name: sum(model[name] for model in models) / len(models) for name in models[0]}

    class SeedShapedFlow(FLSpec):
        def __init__(self, rounds: int, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.model = {"w": np.zeros(elements, np.float32), "b": np.zeros(10, np.float32)}
            self.rounds = rounds

        @aggregator
        def start(self):
            self.collaborators = self.runtime.collaborators
            self.current_round = 0
            self.next(self.aggregated_model_validation, foreach="collaborators")

        @collaborator
        def aggregated_model_validation(self):
            self.agg_validation_score = float(self.model["w"][:64] @ self.shard[:64])
            self.next(self.train)

        @collaborator
        def train(self):
            # logistic regression on the shard: the step's own compute
            x, y = (
                self.shard.reshape(-1, 64),
                (self.shard.reshape(-1, 64).sum(axis=1) > 32).astype(np.float32),
            )
            weights = np.zeros(64, np.float32)
            for _ in range(EPOCHS):
                weights -= 0.1 * x.T @ (1 / (1 + np.exp(-(x @ weights))) - y) / len(y)
            update = np.float32(0.01) * float(weights.mean())
            self.model = {name: value + update for name, value in self.model.items()}
            self.loss = float(update)
            self.next(self.local_model_validation)

        @collaborator
        def local_model_validation(self):
            self.local_validation_score = float(self.model["w"][:64] @ self.shard[:64])
            self.next(self.join)

        @aggregator
        def join(self, inputs):
            self.average_loss = sum(i.loss for i in inputs) / len(inputs)
            if join == "streaming":
                self.model = streaming_fedavg(inputs, "model")
            else:
                self.model = seed_fedavg([i.model for i in inputs])
            self.current_round += 1
            if self.current_round < self.rounds:
                self.next(self.aggregated_model_validation, foreach="collaborators")
            else:
                self.next(self.end)

        @aggregator
        def end(self):
            pass

    setup_seconds = 0.0

    def shard_of(index: int) -> dict[str, Any]:
        """Each collaborator's private data (user code: its time is not the runtime's)."""
        nonlocal setup_seconds
        started = time.perf_counter()
        shard = np.random.default_rng(index).random(64 * 2048, dtype=np.float32)
        setup_seconds += time.perf_counter() - started
        return {"shard": shard}

    collaborators = [
        Collaborator(f"site{i}", private_attributes_callable=shard_of, index=i) for i in range(n)
    ]
    runtime = LocalRuntime(aggregator=Aggregator(), collaborators=collaborators, backend=backend)
    flow = SeedShapedFlow(rounds)
    flow.runtime = runtime
    devnull = open(os.devnull, "w")  # noqa: SIM115 - the flow prints nothing; keep the bench's stdout clean
    started = time.perf_counter()
    stdout, sys.stdout = sys.stdout, devnull
    try:
        flow.run()
    finally:
        sys.stdout = stdout
    seconds = time.perf_counter() - started
    assert flow.current_round == rounds
    # the users' own code: the steps and the private attributes' callables
    step_seconds = sum(output.seconds for output in runtime.step_outputs) + setup_seconds
    return {"seconds": seconds, "step_seconds": step_seconds, "steps": len(runtime.step_outputs)}


def tree_rss_bytes(root: int) -> int:
    """RSS of `root` and every process under it, read from /proc."""
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/statm") as statm:
                total += int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as children:
                    todo += [int(child) for child in children.read().split()]
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return total


def run_child(backend: str, n: int, rounds: int, elements: int, join: str) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", backend, str(n), str(rounds), str(elements), join]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.05):
            peak = max(peak, tree_rss_bytes(process.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = process.communicate()
    done.set()
    sampler.join()
    if process.returncode != 0:
        sys.exit(f"bench child {backend} N={n} failed:\n{err[-3000:]}")
    figures: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    figures["peak_mb"] = peak / MB
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 16, 64])
    parser.add_argument("--backends", nargs="+", default=["single_process", "ray"])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        backend, n, rounds, elements, join = args.child
        print(json.dumps(child(backend, int(n), int(rounds), int(elements), join)))
        return
    backends = list(args.backends)
    if "ray" in backends:
        try:
            import ray  # noqa: F401
        except ImportError:
            print("ray is not installed: the ray backend is skipped (pip install -e '.[ray]')")
            backends.remove("ray")
    verdicts: list[bool] = []
    header = f"{'backend':>14}  {'model':>6}  {'join':>9}  {'N':>3}  {'wall s':>8}  {'peak MB':>8}"
    print(f"{header}  {'runtime share':>13}  {'runtime ms/step':>15}")
    for backend in backends:
        for label, elements in (("100 KB", SMALL_ELEMENTS), ("50 MB", LARGE_ELEMENTS)):
            joins = ("seed", "streaming") if elements == LARGE_ELEMENTS else ("seed",)
            for join in joins:
                for n in args.sizes:
                    figures = run_child(backend, n, args.rounds, elements, join)
                    share = 1.0 - figures["step_seconds"] / figures["seconds"]
                    shown = f"{share:.1%}" if backend == "single_process" else "(parallel)"
                    own_ms = (figures["seconds"] - figures["step_seconds"]) / figures["steps"] * 1e3
                    per_step = f"{own_ms:.2f}" if backend == "single_process" else "-"
                    print(
                        f"{backend:>14}  {label:>6}  {join:>9}  {n:>3}  {figures['seconds']:>8.2f}"
                        f"  {figures['peak_mb']:>8.0f}  {shown:>13}  {per_step:>15}",
                        flush=True,
                    )
                    if backend != "single_process":
                        continue
                    if elements == LARGE_ELEMENTS and n == 64:
                        limit = n * 50 + 600 if join == "seed" else 1024
                        ok = figures["peak_mb"] < limit and figures["seconds"] < OPENFL_SECONDS / 3
                        verdicts.append(ok)
                        print(
                            f"{'':>14}  target: peak < {limit} MB, wall < {OPENFL_SECONDS / 3:.0f} s"
                            f" (OpenFL 1.9: {OPENFL_SECONDS:.0f} s, {OPENFL_PEAK_GB} GB):"
                            f" {'met' if ok else 'MISSED'}"
                        )
                    if elements == SMALL_ELEMENTS and n == 16:
                        verdicts.append(share < 0.10)
                        print(
                            f"{'':>14}  target: runtime share < 10 %: {'met' if share < 0.10 else 'MISSED'}"
                        )
    print("\nall targets met" if verdicts and all(verdicts) else "\nsome targets MISSED")


if __name__ == "__main__":
    main()
