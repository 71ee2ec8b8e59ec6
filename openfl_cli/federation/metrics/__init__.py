"""Metric records and writers (JSON lines, TensorBoard event files through tensorboardX, a callback)."""

from openfl_cli.federation.metrics.record import MetricRecord
from openfl_cli.federation.metrics.writers import (
    CallbackMetricWriter,
    JsonlMetricWriter,
    MetricCallback,
    MetricWriter,
    MultiWriter,
    TensorBoardWriter,
    open_metric_writers,
)

__all__ = [
    "CallbackMetricWriter",
    "JsonlMetricWriter",
    "MetricCallback",
    "MetricRecord",
    "MetricWriter",
    "MultiWriter",
    "TensorBoardWriter",
    "open_metric_writers",
]
