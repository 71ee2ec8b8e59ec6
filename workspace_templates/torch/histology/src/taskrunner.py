"""A small convolutional network for the 8 tissue classes, trained by fx's PyTorch task runner."""

from __future__ import annotations

from torch import nn

from openfl_cli.runners.torch import PyTorchTaskRunner

N_CLASSES = 8


def block(channels_in: int, channels_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels_in, channels_out, 3, padding=1),
        nn.BatchNorm2d(channels_out),
        nn.ReLU(),
        nn.MaxPool2d(2),
    )


class PyTorchHistologyCNN(PyTorchTaskRunner):
    """Four conv blocks and global average pooling: works at any tile size (150 by default)."""

    def build_model(self) -> nn.Module:
        return nn.Sequential(
            block(3, 16),
            block(16, 32),
            block(32, 64),
            block(64, 64),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(0.2),
            nn.Linear(64, N_CLASSES),
        )
