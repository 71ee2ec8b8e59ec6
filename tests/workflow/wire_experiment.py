"""A user's experiment module, as tests/workflow/test_wire.py sends its objects: the classes it defines
travel by reference; its functions and what it imports from elsewhere must not."""

from __future__ import annotations

import enum
from os import system  # noqa: F401 - imported, not defined here: a payload naming it is refused
from subprocess import Popen  # noqa: F401 - likewise, and a class

import numpy as np


class Stage(enum.Enum):
    TRAIN = "train"
    VALIDATE = "validate"


class Score:
    """A user's object: arrays, an enum and an instance of its own nested class."""

    class Detail:
        def __init__(self, note: str) -> None:
            self.note = note

    def __init__(self, name: str, values: np.ndarray, stage: Stage) -> None:
        self.name = name
        self.values = values
        self.stage = stage
        self.detail = Score.Detail(f"{name} at {stage.value}")


def summarize(score: Score) -> float:
    """A function of the experiment: it never travels."""
    return float(score.values.mean())
