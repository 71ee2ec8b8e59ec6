"""A small convolutional network for MNIST, trained by fx's PyTorch task runner."""

from __future__ import annotations

from torch import nn

from openfl_cli.runners.torch import PyTorchTaskRunner


class TemplateTaskRunner(PyTorchTaskRunner):
    """Two convolutions and two dense layers; Adam and cross-entropy come from the base runner.

    Add `mu: 0.01` to `tasks.train.kwargs` in the plan to train with FedProx.
    """

    def build_model(self) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, kernel_size=3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(32 * 5 * 5, 64),
            nn.ReLU(),
            nn.Linear(64, 10),
        )
