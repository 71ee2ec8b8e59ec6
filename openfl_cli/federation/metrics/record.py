"""One metric value reported in a round: what writers write and the state store keeps."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class MetricRecord:
    round_number: int
    node: str  # "aggregator" or a collaborator name
    task: str
    metric: str
    value: float
    time: float = field(default_factory=time.time)  # wall clock, seconds since the epoch

    def __post_init__(self) -> None:
        if isinstance(self.value, bool) or not isinstance(self.value, (int, float)):
            raise ValueError(f"metric {self.metric!r} must be a number, got {self.value!r}")
        if not math.isfinite(self.value):
            raise ValueError(f"metric {self.metric!r} must be finite, got {self.value!r}")
        object.__setattr__(self, "value", float(self.value))
        object.__setattr__(self, "time", float(self.time))

    def as_json(self) -> dict[str, object]:
        return {
            "round": self.round_number,
            "node": self.node,
            "task": self.task,
            "metric": self.metric,
            "value": self.value,
            "time": self.time,
        }
