"""The FedJob API on the simulator: the seed's cifar10_fedavg job rewritten for the bundled digits
(`tests/e2e/fedjob_digits/`), 2 rounds, 2 threads, with N = 2, 8 and 32 clients, in-process (each
client's script a thread of one process) and ex-process (each a subprocess talking to its client over a
local socket), and with a 50 MB model at N = 8. Each run is a fresh child process; its peak RSS is
sampled every 50 ms over the child and every process under it (the ex-process scripts included).

Target: N = 32 in-process, 2 rounds, under 30 s and under 1 GB peak RSS.

    .venv/bin/python bench/fedjob.py [--sizes 2 8 32] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS, TARGET_MB = 30.0, 1024.0
WIDE = 190_000  # hidden units: a 57 MB model


def child(n: int, rounds: int, external: bool, hidden: int) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from tests.e2e.fedjob_digits.job import digits_job

    job = digits_job(n, rounds, launch_external_process=external, hidden=hidden)
    with tempfile.TemporaryDirectory(prefix="fx-bench-fedjob-") as workspace:
        started = time.perf_counter()
        job.simulator_run(workspace, threads=2, n_clients=n)
        seconds = time.perf_counter() - started
    return {"seconds": seconds}


def run(n: int, rounds: int, external: bool, hidden: int) -> dict[str, Any]:
    """One fresh child process, its wall time and the peak RSS of its process tree (the bench's sampler)."""
    sys.path.insert(0, str(ROOT / "bench"))
    from workflow import run_command

    command = [sys.executable, __file__, "--child", str(n), str(rounds), str(int(external)), str(hidden)]
    return run_command(command, f"N={n}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2, 8, 32])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        n, rounds, external, hidden = (int(v) for v in args.child)
        print(json.dumps(child(n, rounds, bool(external), hidden)))
        return
    print(f"digits FedAvg job, {args.rounds} rounds, simulator threads=2")
    print(f"{'mode':>11}  {'model':>6}  {'N':>3}  {'wall s':>7}  {'peak MB':>8}")
    verdicts: list[bool] = []
    cases = [(mode, "small", n) for mode in ("in-process", "ex-process") for n in args.sizes]
    cases.append(("in-process", "57 MB", 8))
    for mode, model, n in cases:
        figures = run(n, args.rounds, mode == "ex-process", WIDE if model != "small" else 32)
        print(
            f"{mode:>11}  {model:>6}  {n:>3}  {figures['seconds']:>7.2f}  {figures['peak_mb']:>8.0f}",
            flush=True,
        )
        if mode == "in-process" and model == "small" and n == 32:
            ok = figures["seconds"] < TARGET_SECONDS and figures["peak_mb"] < TARGET_MB
            verdicts.append(ok)
            print(
                f"{'':>11}  target: N = 32 under {TARGET_SECONDS:.0f} s and {TARGET_MB:.0f} MB:"
                f" {'met' if ok else 'MISSED'}"
            )
    print("\nall targets met" if verdicts and all(verdicts) else "\nsome targets MISSED")


if __name__ == "__main__":
    main()
