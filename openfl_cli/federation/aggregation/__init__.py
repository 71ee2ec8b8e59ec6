"""Aggregation functions, framework-agnostic: streaming, per task (see `base` for the contract), and
pure functions over arrays and models (`pure`, `server_steps`) that share their arithmetic."""

from openfl_cli.federation.aggregation.average import WeightedAverage, WeightedSumAccumulator
from openfl_cli.federation.aggregation.base import (
    AgreementAccumulator,
    Contribution,
    ContributionError,
    TensorAccumulator,
    is_float_tensor,
)
from openfl_cli.federation.aggregation.fedcurv import FedCurvWeightedAverage, SumAccumulator
from openfl_cli.federation.aggregation.function import AggregationFunction
from openfl_cli.federation.aggregation.metrics import weighted_metrics
from openfl_cli.federation.aggregation.pure import (
    median,
    median_models,
    trimmed_mean,
    trimmed_mean_models,
    weighted_average,
    weighted_average_models,
)
from openfl_cli.federation.aggregation.robust import Median, TrimmedMean
from openfl_cli.federation.aggregation.server_opt import FedAdam, FedAvgM
from openfl_cli.federation.aggregation.server_steps import fedadam_step, fedavgm_step

__all__ = [
    "AggregationFunction",
    "AgreementAccumulator",
    "Contribution",
    "ContributionError",
    "FedAdam",
    "FedAvgM",
    "FedCurvWeightedAverage",
    "Median",
    "SumAccumulator",
    "TensorAccumulator",
    "TrimmedMean",
    "WeightedAverage",
    "WeightedSumAccumulator",
    "fedadam_step",
    "fedavgm_step",
    "is_float_tensor",
    "median",
    "median_models",
    "trimmed_mean",
    "trimmed_mean_models",
    "weighted_average",
    "weighted_average_models",
    "weighted_metrics",
]
