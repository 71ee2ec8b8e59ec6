"""A real federation of a model beyond 2 GiB: by default one float32 tensor of 2.3 GB (larger than
protobuf's and gRPC's message limits), trivial training, collaborators as separate processes over
mutual TLS on loopback, the aggregator persisting every round to SQLite and last.pbuf.

Prints the seconds per round, the seconds not spent in training, the aggregator's peak resident memory
as a multiple of the model, and checks that last.pbuf holds what the collaborators trained.

    .venv/bin/python bench/large_model.py [--megabytes 2300] [--tensors 1] [--collaborators 1]

Needs about 8x the model in free memory (aggregator and collaborators together) and 4x on disk.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from round_overhead import MB, NAMES, prepare, run_once  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--megabytes", type=float, default=2300.0)
    parser.add_argument("--tensors", type=int, default=1)
    parser.add_argument("--collaborators", type=int, default=1, choices=range(1, len(NAMES) + 1))
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    model_bytes = int(args.megabytes * MB)
    with tempfile.TemporaryDirectory(prefix="fx-large-") as folder:
        began = time.monotonic()
        federation = prepare(Path(folder), args.megabytes, args.rounds, args.tensors)
        try:
            prepared = time.monotonic() - began
            overheads, peak = run_once(federation, NAMES[: args.collaborators], "large")
            log = federation.log("aggregator-large.log")
            rounds = [float(s) for s in re.findall(r"^round \d+/\d+: .*, ([\d.]+) s", log, re.M)]
            last = _last_model(federation.aggregator / "save" / "last.pbuf")
        finally:
            federation.close()
    largest = model_bytes // args.tensors
    print(
        f"model: {model_bytes / MB:.0f} MB float32 in {args.tensors} tensor(s) of {largest / 2**30:.2f} GiB;"
        f" {args.collaborators} collaborator(s), {args.rounds} rounds; workspace prepared in {prepared:.0f} s"
    )
    print(f"seconds per round: {', '.join(f'{s:.1f}' for s in rounds)}")
    print(f"outside training (rounds after the first): {statistics.median(overheads):.1f} s")
    print(f"aggregator peak memory: {peak / MB:.0f} MB = {peak / model_bytes:.2f}x the model")
    # the bench runner starts at 0.01 and adds 0.001 per round of training, in float32
    expected = np.float32(0.01)
    for _ in range(args.rounds):
        expected = np.float32(expected + np.float32(0.001))
    verdict = "yes" if last == expected else f"NO ({last})"
    print(f"last.pbuf: every element {expected:.3f} as trained: {verdict}")


def _last_model(path: Path) -> float | str:
    """The single value every element of last.pbuf holds, or a description of what is wrong."""
    from openfl_cli.tensors.snapshot import load_snapshot

    tensors = load_snapshot(path).tensors
    values = {float(value.min()) for value in tensors.values()} | {float(v.max()) for v in tensors.values()}
    return values.pop() if len(values) == 1 else f"values {sorted(values)}"


if __name__ == "__main__":
    main()
