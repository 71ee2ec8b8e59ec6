"""What fx's PyTorch task runner adds to one local epoch of the torch/mnist template, on the CPU.

Times `runner.train_task()` (one epoch, weights and optimizer state read back as NumPy arrays, as a
collaborator does) against the same epoch written as a plain PyTorch loop: same model and initial
weights, same optimizer, same batches. The two alternate (ABBA order, so drift hits both alike) and the
medians are compared. MNIST is read from --mnist-folder; offline and without it the template falls back
to scikit-learn's digits drawn at 28x28 (its log says so).

    .venv/bin/python bench/training_overhead.py [--repeats 21] [--batch-size 64] [--threads 1]
"""

from __future__ import annotations

import argparse
import copy
import importlib
import logging
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

TEMPLATE = Path(__file__).resolve().parent.parent / "workspace_templates" / "torch" / "mnist"
LIMIT_PERCENT = 5.0


def plain_epoch(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batches) -> float:
    """The loop a PyTorch user writes by hand."""
    model.train()
    total, seen = 0.0, 0
    for inputs, targets in batches:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(inputs), targets)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(targets)
        seen += len(targets)
    return total / seen


def timed(step: Callable[[], object]) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=21, help="epochs timed per side")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--mnist-folder", default="data/mnist")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)

    sys.path.insert(0, str(TEMPLATE))
    dataloader = importlib.import_module("src.dataloader")
    taskrunner = importlib.import_module("src.taskrunner")
    loader = dataloader.PyTorchMNISTInMemory("1", args.batch_size, 1, mnist_folder=args.mnist_folder)
    runner = taskrunner.TemplateTaskRunner(loader, device="cpu")
    model = copy.deepcopy(runner.model)
    optimizer = torch.optim.Adam(model.parameters(), lr=runner.learning_rate)
    batches = loader.get_train_loader()

    def through_runner() -> None:
        runner.train_task(0)

    def by_hand() -> None:
        plain_epoch(model, optimizer, batches)

    through_runner(), by_hand()  # warm-up: allocator, kernels, lazy optimizer state
    runner_times, plain_times = [], []
    for i in range(args.repeats):
        order = ((through_runner, runner_times), (by_hand, plain_times))
        for step, times in order if i % 2 == 0 else order[::-1]:
            times.append(timed(step))

    runner_median, plain_median = statistics.median(runner_times), statistics.median(plain_times)
    overhead = 100.0 * (runner_median - plain_median) / plain_median
    print(
        f"torch/mnist, CPU, {args.threads} thread(s): {loader.get_train_data_size()} samples per epoch, "
        f"batch size {args.batch_size}, {args.repeats} epochs each, alternating"
    )
    print(f"  plain PyTorch loop : median {plain_median * 1000:8.1f} ms per epoch")
    print(f"  fx task runner     : median {runner_median * 1000:8.1f} ms per epoch")
    verdict = "within" if overhead < LIMIT_PERCENT else "OVER"
    print(f"  runner overhead    : {overhead:+.2f} % ({verdict} the {LIMIT_PERCENT:.0f} % budget)")


if __name__ == "__main__":
    main()
