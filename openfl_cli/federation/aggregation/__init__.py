"""Aggregation functions: streaming, per task, framework-agnostic (see `base` for the contract)."""

from openfl_cli.federation.aggregation.average import WeightedAverage, WeightedSumAccumulator
from openfl_cli.federation.aggregation.base import (
    AgreementAccumulator,
    Contribution,
    ContributionError,
    TensorAccumulator,
    is_float_tensor,
)
from openfl_cli.federation.aggregation.function import AggregationFunction
from openfl_cli.federation.aggregation.metrics import weighted_metrics
from openfl_cli.federation.aggregation.robust import Median, TrimmedMean
from openfl_cli.federation.aggregation.server_opt import FedAdam, FedAvgM

__all__ = [
    "AggregationFunction",
    "AgreementAccumulator",
    "Contribution",
    "ContributionError",
    "FedAdam",
    "FedAvgM",
    "Median",
    "TensorAccumulator",
    "TrimmedMean",
    "WeightedAverage",
    "WeightedSumAccumulator",
    "is_float_tensor",
    "weighted_metrics",
]
