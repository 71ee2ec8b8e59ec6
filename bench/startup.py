"""Start-up time of `fx`: median wall time of `fx --help` and of `fx plan initialize` on a fresh workspace.

Run: `.venv/bin/python bench/startup.py [--runs 15]`. Each figure is the median of N subprocess runs,
for `python -m openfl_cli` and for the installed `fx` script when there is one. Also reports whether
`fx --help` imported any heavy module (it must not).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

HELP_TARGET_S = 0.2
HEAVY = ("numpy", "grpc", "torch", "tensorflow", "ray", "yaml", "sklearn", "google.protobuf", "cryptography")


def _env() -> dict[str, str]:
    env = dict(os.environ, FX_OFFLINE="1")
    env.pop("FQDN", None)
    return env


def _time(argv: Sequence[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        argv, cwd=cwd, env=_env(), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return time.perf_counter() - start


def median_help(fx: Sequence[str], runs: int, cwd: Path) -> float:
    return statistics.median(_time([*fx, "--help"], cwd) for _ in range(runs))


def median_initialize(fx: Sequence[str], runs: int, scratch: Path) -> float:
    """Each run initializes its own fresh numpy/digits workspace (created outside the timing)."""
    times = []
    for index in range(runs):
        workspace = scratch / f"ws{index}"
        subprocess.run(
            [*fx, "workspace", "create", "--prefix", str(workspace), "--template", "numpy/digits"],
            env=_env(),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        times.append(_time([*fx, "plan", "initialize", "-a", "localhost"], workspace))
        shutil.rmtree(workspace)
    return statistics.median(times)


def heavy_modules_on_help() -> list[str]:
    probe = (
        "import json, sys\nfrom openfl_cli.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "sys.stderr.write(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return [name for name in json.loads(done.stderr) if name.split(".")[0] in HEAVY or name in HEAVY]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()

    launchers = {"python -m openfl_cli": [sys.executable, "-m", "openfl_cli"]}
    script = Path(sys.executable).with_name("fx")
    if script.is_file():
        launchers["fx script"] = [str(script)]
    elif found := shutil.which("fx"):
        launchers["fx script"] = [found]

    print(f"median wall time over {args.runs} runs")
    heavy = heavy_modules_on_help()
    print(f"fx --help imports heavy modules: {', '.join(heavy) if heavy else 'none'}")
    with tempfile.TemporaryDirectory(prefix="fx-bench-") as scratch:
        root = Path(scratch)
        for label, fx in launchers.items():
            help_s = median_help(fx, args.runs, root)
            verdict = "ok" if help_s < HELP_TARGET_S else f"OVER the {HELP_TARGET_S:.2f} s target"
            print(f"{label:22} fx --help           median {help_s * 1000:7.1f} ms ({verdict})")
            init_s = median_initialize(fx, args.runs, root)
            print(f"{label:22} fx plan initialize median {init_s * 1000:7.1f} ms")
    python_s = statistics.median(_time([sys.executable, "-c", "pass"], Path.cwd()) for _ in range(args.runs))
    print(f"{'(bare python start)':22} python -c pass     median {python_s * 1000:7.1f} ms")
    sys.exit(1 if heavy else 0)


if __name__ == "__main__":
    main()
