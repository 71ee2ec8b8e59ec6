"""The seed's FederatedFlow (its CNN widened to a 50 MB model) on the FederatedRuntime against the
LocalRuntime: a director and two envoys as real `fx` processes over mutual TLS on 127.0.0.1, the same
two collaborators' data on both runtimes. Part of `bench/workflow.py` (`--federated-only`).

Each run is a fresh process; the figures are medians over `pairs` alternating local / federated runs,
after one federated run on the fresh services (reported apart: the director and the envoys import
PyTorch and the experiment's code the first time). Seconds per round are a run's wall time (packaging,
submission, review and loading included) over its rounds. The director's peak RSS is sampled every
50 ms over the director process, through every run.
Target: the FederatedRuntime adds under 1.5 s per round to the LocalRuntime's time. Each envoy gets its
share of this machine's cores (OMP_NUM_THREADS), as it would have machines of its own: two envoys training
at once with PyTorch's default threads each would oversubscribe the cores and measure that instead. The
runtime's own time per round, as the director measures it (a round's wall time less its slowest envoy's
steps), is printed beside.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MB = 1 << 20
TARGET_SECONDS = 1.5

_FLOW = """
import io, json, re, sys, time
sys.path.insert(0, {root!r})
import torch
from torch import optim
from tests.workflow import seed_flows

rounds = int(sys.argv[1])
torch.manual_seed(0)
model = seed_flows.WideNet()
optimizer = optim.SGD(model.parameters(), lr=seed_flows.learning_rate, momentum=seed_flows.momentum)
flow = seed_flows.FederatedFlow(model, optimizer, rounds=rounds)
{runtime}
started = time.perf_counter()
quiet = io.StringIO()
saved, sys.stdout = sys.stdout, quiet
try:
    flow.run()
finally:
    sys.stdout = saved
seconds = time.perf_counter() - started
said = quiet.getvalue()
outside = re.search(r"rounds? at the envoys, ([0-9.]+) s each outside", said)
start = re.search(r"started in ([0-9.]+) s", said)
print(json.dumps({{"seconds": seconds, "round": flow.current_round,
                  "outside": float(outside.group(1)) if outside else None,
                  "start": float(start.group(1)) if start else None,
                  "model_mb": sum(p.numel() * p.element_size() for p in flow.model.parameters()) / 2**20}}))
"""

_LOCAL = """
import importlib.util
from openfl_cli.workflow import Aggregator, Collaborator, LocalRuntime
spec = importlib.util.spec_from_file_location("envoy_private", sys.argv[2])
private = importlib.util.module_from_spec(spec)
spec.loader.exec_module(private)
names = ["env_one", "env_two"]
collaborators = [Collaborator(n, private_attributes_callable=private.envoy_attrs, index=i, n_collaborators=2)
                 for i, n in enumerate(names)]
flow.runtime = LocalRuntime(aggregator=Aggregator(), collaborators=collaborators)
"""

_FEDERATED = """
from openfl_cli.workflow import FederatedRuntime
flow.runtime = FederatedRuntime(collaborators=["env_one", "env_two"], director=json.loads(sys.argv[2]))
"""


def _run_script(script: Path, folder: Path, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(script), *args], cwd=folder, capture_output=True, text=True, timeout=1800
    )
    if done.returncode != 0:
        sys.exit(f"bench run {script.name} failed:\n{done.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def federated_bench(rounds: int, pairs: int, rss_of: Any) -> bool:
    """`rss_of(pid)`: the RSS of a process tree, in bytes (the bench's sampler)."""
    sys.path.insert(0, str(ROOT))
    from tests.e2e.director_run import ENVOYS, PRIVATE_ATTRIBUTES, Services, certify

    print(
        f"FederatedRuntime (director + {len(ENVOYS)} envoys, mTLS) against LocalRuntime,"
        f" seed flow, {rounds} rounds:"
    )
    with tempfile.TemporaryDirectory(prefix="fx-bench-federated-") as scratch:
        root = Path(scratch)
        work = root / "work"
        work.mkdir()
        (work / "envoy_private.py").write_text(PRIVATE_ATTRIBUTES)
        local_script, federated_script = work / "local_run.py", work / "federated_run.py"
        local_script.write_text(_FLOW.format(root=str(ROOT), runtime=_LOCAL))
        federated_script.write_text(_FLOW.format(root=str(ROOT), runtime=_FEDERATED))
        services = Services(certify(root / "pki"), root / "services", period=5.0)
        peak = 0
        try:
            services.start_director()
            # each envoy its share of the cores, as on machines of their own (both training at once on
            # shared cores with PyTorch's default threads each would measure the oversubscription)
            share = {"OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 2) // len(ENVOYS)))}
            for name in ENVOYS:
                services.start_envoy(name, env=share)
            director = json.dumps(services.certified.user_director_info(services.port))
            pid = services.processes["director"].pid
            done = threading.Event()

            def sample() -> None:
                nonlocal peak
                while not done.wait(0.05):
                    peak = max(peak, rss_of(pid))

            threading.Thread(target=sample, daemon=True).start()
            cold = _run_script(federated_script, work, str(rounds), director)
            local, federated = [], []
            for _ in range(pairs):
                local.append(_run_script(local_script, work, str(rounds), str(work / "envoy_private.py")))
                federated.append(_run_script(federated_script, work, str(rounds), director))
            done.set()
        finally:
            services.stop_all()
    local_s = statistics.median(f["seconds"] for f in local)
    federated_s = statistics.median(f["seconds"] for f in federated)
    overhead = (federated_s - local_s) / rounds
    print(f"{'runtime':>16}  {'wall s':>7}  {'s/round':>8}")
    print(f"{'LocalRuntime':>16}  {local_s:>7.2f}  {local_s / rounds:>8.2f}")
    print(f"{'FederatedRuntime':>16}  {federated_s:>7.2f}  {federated_s / rounds:>8.2f}")
    print(f"{'(first on fresh)':>16}  {cold['seconds']:>7.2f}  {cold['seconds'] / rounds:>8.2f}")
    print(f"model {local[0]['model_mb']:.0f} MB; the director's peak RSS {peak / MB:.0f} MB")
    outside = statistics.median(f["outside"] for f in federated)
    start = statistics.median(f["start"] for f in federated)
    print(
        f"overhead {overhead:+.2f} s per round (each envoy with {share['OMP_NUM_THREADS']} of the"
        f" {os.cpu_count()} cores). Of a federated round, {outside:.2f} s is the runtime's own (the"
        " round's wall time at the director less its slowest envoy's steps: the state out and back,"
        f" encoding, queues). Before the first step: {start:.2f} s (review, code loaded, state decoded)."
    )
    ok = overhead < TARGET_SECONDS
    print(f"target: overhead < {TARGET_SECONDS} s per round: {'met' if ok else 'MISSED'}")
    return ok
