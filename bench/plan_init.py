"""How long `fx plan initialize` and `fx model save` take, per template, in this tree and at a baseline
commit, measured in one run (alternating, so both see the same machine load), and where the time goes.

    .venv/bin/python bench/plan_init.py [--repeat 3] [--baseline HEAD] [--templates torch/mnist numpy/digits]

The baseline is `git archive`d into a temporary folder (the work tree and its git state are left alone)
and run with PYTHONPATH pointing there. FX_OFFLINE is left unset, as a user would have it: an offline
machine then measures its download attempt too. Figures are wall seconds (median, min-max) and the CPU
seconds of the command (user + system), which a busy machine inflates less than the wall time.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

PHASES = r"""
import time
def timed(label, call):
    started = time.perf_counter(); call(); print(f"  {label:<58} {time.perf_counter() - started:6.2f} s")
timed("import torch", lambda: __import__("torch"))
import torch
layer = torch.nn.Linear(2, 2)
timed("first torch.optim.Adam (imports torch._dynamo)", lambda: torch.optim.Adam(layer.parameters()))
from openfl_cli.data import mnist
timed("MNIST offline stand-in (scikit-learn digits, import included)", mnist.digits_as_mnist)
timed("is a MNIST mirror reachable? (the probe)", mnist.mirrors_reachable)
"""


def baseline_tree(revision: str, into: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(REPO), "archive", revision], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def fx_env(tree: Path | None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("FX_OFFLINE", "FQDN")}
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    return env


def timed_fx(args: Sequence[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall, cpu) seconds of `fx ARGS`."""
    import time

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "openfl_cli", *args], cwd=cwd, env=env, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"fx {' '.join(args)} in {cwd} failed:\n{proc.stderr.decode()}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def one_run(template: str, scratch: Path, tree: Path | None) -> dict[str, tuple[float, float]]:
    env = fx_env(tree)
    workspace = Path(tempfile.mkdtemp(dir=scratch)) / "ws"
    timed_fx(["workspace", "create", "--prefix", str(workspace), "--template", template], scratch, env)
    initialize = timed_fx(["plan", "initialize", "-a", "localhost"], workspace, env)
    suffix = ".pt" if template.startswith("torch") else ".npz"
    save = timed_fx(["model", "save", "-i", "save/init.pbuf", "-o", f"model{suffix}"], workspace, env)
    return {"plan initialize": initialize, "model save": save}


def summary(samples: list[tuple[float, float]]) -> str:
    walls = [wall for wall, _ in samples]
    cpu = statistics.median(c for _, c in samples)
    return f"{statistics.median(walls):5.2f} s ({min(walls):.2f}-{max(walls):.2f}), cpu {cpu:5.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline", default="HEAD", help="git revision to compare with ('' for none)")
    parser.add_argument("--templates", nargs="+", default=["torch/mnist", "numpy/digits"])
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="fx-bench-plan-init-") as scratch_name:
        scratch = Path(scratch_name)
        versions: dict[str, Path | None] = {"now": None}
        if options.baseline:
            base = scratch / "baseline"
            base.mkdir()
            versions = {options.baseline: baseline_tree(options.baseline, base), "now": None}
        print("where the time goes (this tree, one process):")
        subprocess.run([sys.executable, "-c", PHASES], env=fx_env(None), check=True)
        results: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
        for repeat in range(options.repeat):
            order = list(versions.items())
            if repeat % 2:
                order.reverse()  # alternate who runs first
            for template in options.templates:
                for name, tree in order:
                    for command, sample in one_run(template, scratch, tree).items():
                        results.setdefault((template, command, name), []).append(sample)
        print(f"\nwall time, median of {options.repeat} (min-max), and CPU time:")
        for template in options.templates:
            for command in ("plan initialize", "model save"):
                line = f"  {template:<13} fx {command:<16}"
                for name in versions:
                    line += f"  {name}: {summary(results[(template, command, name)])}"
                print(line)


if __name__ == "__main__":
    main()
