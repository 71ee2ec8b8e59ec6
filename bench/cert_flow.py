"""Time the whole certificate flow (aggregator and two collaborators), each command its own `fx` process.

Run: .venv/bin/python bench/cert_flow.py [--collaborators N] [--repeat R]
Setup (workspace create, plan initialize, export, import) is not timed; the certificate commands are:
workspace certify, aggregator generate-cert-request and certify, and per collaborator: create,
generate-cert-request, certify --request-pkg (aggregator) and certify --import.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FX = [sys.executable, "-m", "openfl_cli"]
BUDGET_S = 5.0
_HASH = re.compile(r"is ([0-9a-f]{96})\b")


def fx(args: list[str], cwd: Path, timings: list[tuple[str, float]] | None = None) -> str:
    env = {**os.environ, "FX_OFFLINE": "1"}
    env.pop("FQDN", None)
    start = time.perf_counter()
    done = subprocess.run(
        [*FX, *args], cwd=cwd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"fx {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    if timings is not None:
        timings.append((" ".join(args[:3]), elapsed))
    return done.stdout


def run_once(root: Path, names: list[str]) -> list[tuple[str, float]]:
    aggregator = root / "aggregator" / "federation"
    fx(["workspace", "create", "--prefix", str(aggregator), "--template", "numpy/digits"], root)
    fx(["plan", "initialize", "-a", "localhost"], aggregator)
    fx(["workspace", "export"], aggregator)
    nodes = {}
    for name in names:
        node = root / f"col_{name}"
        node.mkdir()
        fx(["workspace", "import", "--archive", str(aggregator / "federation.zip")], node)
        nodes[name] = node / "federation"

    timings: list[tuple[str, float]] = []
    fx(["workspace", "certify"], aggregator, timings)
    fx(["aggregator", "generate-cert-request", "--fqdn", "localhost"], aggregator, timings)
    fx(["aggregator", "certify", "--fqdn", "localhost", "-s"], aggregator, timings)
    for index, (name, workspace) in enumerate(nodes.items(), start=1):
        fx(["collaborator", "create", "-n", name, "-d", str(index), "-s"], workspace, timings)
        printed = fx(["collaborator", "generate-cert-request", "-n", name, "-s"], workspace, timings)
        found = _HASH.search(printed)
        assert found, printed
        package = workspace / f"col_{name}_to_agg_cert_request.zip"
        fx(
            ["collaborator", "certify", "--request-pkg", str(package), "--request-hash", found.group(1)],
            aggregator,
            timings,
        )
        signed = aggregator / f"agg_to_col_{name}_signed_cert.zip"
        fx(["collaborator", "certify", "--import", str(signed)], workspace, timings)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collaborators", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    names = [f"col{i}" for i in range(1, options.collaborators + 1)]
    totals = []
    for attempt in range(options.repeat):
        root = Path(tempfile.mkdtemp(prefix="fx-cert-bench-"))
        try:
            timings = run_once(root, names)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        total = sum(seconds for _, seconds in timings)
        totals.append(total)
        if attempt == 0:
            for command, seconds in timings:
                print(f"  {seconds * 1000:7.0f} ms  fx {command}")
        print(f"run {attempt + 1}: {len(timings)} processes, {total:.2f} s")
    best, worst = min(totals), max(totals)
    verdict = "within" if worst < BUDGET_S else "OVER"
    print(
        f"certificate flow, aggregator + {len(names)} collaborators: best {best:.2f} s, worst {worst:.2f} s "
        f"({verdict} the {BUDGET_S:.0f} s budget; {worst / BUDGET_S:.0%} of it)"
    )


if __name__ == "__main__":
    main()
