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

Checkpoints (`--checkpoint`, or part of the default run): the seed's own FederatedFlow (its CNN widened
to a 50 MB model, trained on the bundled digits), 4 collaborators, 2 rounds, run with checkpoint=False
and checkpoint=True in alternating fresh child processes; target: checkpoint=True adds under 25 % wall
time. It prints the disk used per round, and the same figures for the light seed-shaped flow above
(whose steps do almost nothing, so its ratio is the worst case: every step's 50 MB is copied and saved).

    .venv/bin/python bench/workflow.py [--sizes 4 16 64] [--backends single_process ray] [--rounds 2]
    .venv/bin/python bench/workflow.py --checkpoint-only [--pairs 2]
    .venv/bin/python bench/workflow.py --federated-only [--rounds 2] [--pairs 2]

FederatedRuntime (`--federated-only`, or part of the default run; see `bench/federated_runtime.py`): the
seed's flow with its 50 MB model on a director and two envoys over mTLS, against the LocalRuntime with
the same two collaborators; seconds per round of both, and the director's peak RSS. Target: under 1.5 s
per round of overhead.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
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


def child(
    backend: str, n: int, rounds: int, elements: int, join: str, checkpoint: bool = False
) -> dict[str, Any]:
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
    flow = SeedShapedFlow(rounds, checkpoint=checkpoint)
    flow.runtime = runtime
    seconds = run_quietly(flow)
    assert flow.current_round == rounds
    # the users' own code: the steps and the private attributes' callables
    step_seconds = sum(output.seconds for output in runtime.step_outputs) + setup_seconds
    return {
        "seconds": seconds,
        "step_seconds": step_seconds,
        "steps": len(runtime.step_outputs),
        **checkpoint_figures(runtime),
    }


def run_quietly(flow: Any) -> float:
    """Run the flow with its prints kept out of the bench's output; its wall time in seconds."""
    started = time.perf_counter()
    with open(os.devnull, "w") as devnull:
        stdout, sys.stdout = sys.stdout, devnull
        try:
            flow.run()
        finally:
            sys.stdout = stdout
    return time.perf_counter() - started


def checkpoint_figures(runtime: Any) -> dict[str, Any]:
    summary = runtime.checkpoint
    if summary is None:
        return {}
    rounds = summary.bytes_per_round
    return {
        "disk_mb": summary.bytes_written / MB,
        "disk_mb_per_round": sum(rounds) / len(rounds) / MB if rounds else 0.0,
        "writer_seconds": summary.seconds_writing,
    }


def seed_child(rounds: int, checkpoint: bool) -> dict[str, Any]:
    """The seed's FederatedFlow as written, with a 50 MB model passed in (the seed's constructor takes
    one), on 4 collaborators with the seed's private attributes (its MNIST, here the bundled digits)."""
    sys.path.insert(0, str(ROOT))
    import torch
    from torch import optim

    from openfl_cli.workflow import Aggregator, Collaborator, LocalRuntime
    from tests.workflow import seed_flows

    def loaders(index: int, n_collaborators: int) -> dict[str, Any]:
        train, test = seed_flows.DigitsMNIST(train=True), seed_flows.DigitsMNIST(train=False)
        for dataset in (train, test):
            dataset.data = dataset.data[index::n_collaborators]
            dataset.targets = dataset.targets[index::n_collaborators]
        return {
            "train_loader": torch.utils.data.DataLoader(train, batch_size=64, shuffle=True),
            "test_loader": torch.utils.data.DataLoader(test, batch_size=64, shuffle=True),
        }

    names = ["Portland", "Seattle", "Chandler", "Bangalore"]
    collaborators = [
        Collaborator(name, private_attributes_callable=loaders, index=i, n_collaborators=len(names))
        for i, name in enumerate(names)
    ]
    runtime = LocalRuntime(aggregator=Aggregator(), collaborators=collaborators)
    torch.manual_seed(0)
    model = seed_flows.WideNet()
    optimizer = optim.SGD(model.parameters(), lr=seed_flows.learning_rate, momentum=seed_flows.momentum)
    flow = seed_flows.FederatedFlow(model, optimizer, rounds=rounds, checkpoint=checkpoint)
    flow.runtime = runtime
    seconds = run_quietly(flow)
    model_mb = sum(p.numel() * p.element_size() for p in model.parameters()) / MB
    return {"seconds": seconds, "model_mb": model_mb, **checkpoint_figures(runtime)}


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


def run_child(
    backend: str, n: int, rounds: int, elements: int, join: str, checkpoint: bool = False
) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", backend, str(n), str(rounds), str(elements), join]
    command += ["--with-checkpoint"] if checkpoint else []
    return run_command(command, f"{backend} N={n}")


def run_command(command: list[str], what: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="fx-bench-") as folder:  # the checkpoints land here
        environment = {**os.environ, "METAFLOW_DATASTORE_SYSROOT_LOCAL": folder}
        return _run_command(command, what, folder, environment)


def _run_command(command: list[str], what: str, folder: str, environment: dict[str, str]) -> dict[str, Any]:
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=folder, env=environment
    )
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
        sys.exit(f"bench child {what} failed:\n{err[-3000:]}")
    figures: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    figures["peak_mb"] = peak / MB
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 16, 64])
    parser.add_argument("--backends", nargs="+", default=["single_process", "ray"])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--checkpoint-only", action="store_true", help="only the checkpoint figures")
    parser.add_argument("--pairs", type=int, default=2, help="checkpoint off/on pairs per flow")
    parser.add_argument("--federated-only", action="store_true", help="only the FederatedRuntime figures")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    parser.add_argument("--seed-child", nargs=1, help=argparse.SUPPRESS)
    parser.add_argument("--with-checkpoint", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        backend, n, rounds, elements, join = args.child
        figures = child(backend, int(n), int(rounds), int(elements), join, args.with_checkpoint)
        print(json.dumps(figures))
        return
    if args.seed_child:
        print(json.dumps(seed_child(int(args.seed_child[0]), args.with_checkpoint)))
        return
    if args.federated_only:
        ok = run_federated_bench(args.rounds, args.pairs)
        print("\nall targets met" if ok else "\nsome targets MISSED")
        return
    if args.checkpoint_only:
        ok = checkpoint_bench(args.rounds, args.pairs)
        print("\nall targets met" if ok else "\nsome targets MISSED")
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
    print()
    verdicts.append(checkpoint_bench(args.rounds, args.pairs))
    print()
    verdicts.append(run_federated_bench(args.rounds, args.pairs))
    print("\nall targets met" if verdicts and all(verdicts) else "\nsome targets MISSED")


def run_federated_bench(rounds: int, pairs: int) -> bool:
    sys.path.insert(0, str(ROOT / "bench"))
    from federated_runtime import federated_bench

    return federated_bench(rounds, pairs, tree_rss_bytes)


def checkpoint_bench(rounds: int, pairs: int) -> bool:
    """Off and on alternate, `pairs` times, each a fresh process; the medians are compared."""
    print(f"checkpoint=True against checkpoint=False, single_process, 4 collaborators, {rounds} rounds:")
    print(f"{'flow':>24}  {'off s':>7}  {'on s':>7}  {'added':>7}  {'MB/round':>9}  {'writer s':>8}")
    verdict = True
    flows = {
        "seed FederatedFlow 50 MB": lambda on: (
            [sys.executable, __file__, "--seed-child", str(rounds)] + (["--with-checkpoint"] if on else [])
        ),
        "seed-shaped, light steps": lambda on: (
            [
                sys.executable,
                __file__,
                "--child",
                "single_process",
                "4",
                str(rounds),
                str(LARGE_ELEMENTS),
                "seed",
            ]
            + (["--with-checkpoint"] if on else [])
        ),
    }
    for label, command in flows.items():
        off, on = [], []
        for _ in range(pairs):
            off.append(run_command(command(False), f"{label} off"))
            on.append(run_command(command(True), f"{label} on"))
        off_s = statistics.median(f["seconds"] for f in off)
        on_s = statistics.median(f["seconds"] for f in on)
        added = on_s / off_s - 1
        per_round = statistics.median(f["disk_mb_per_round"] for f in on)
        writer = statistics.median(f["writer_seconds"] for f in on)
        print(
            f"{label:>24}  {off_s:>7.2f}  {on_s:>7.2f}  {added:>7.1%}  {per_round:>9.0f}  {writer:>8.2f}",
            flush=True,
        )
        if label.startswith("seed FederatedFlow"):
            ok = added < 0.25
            verdict = verdict and ok
            print(f"{'':>24}  target: checkpoint=True adds < 25 % wall time: {'met' if ok else 'MISSED'}")
    return verdict


if __name__ == "__main__":
    main()
