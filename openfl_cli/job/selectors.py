"""Model selection: which aggregated model the server keeps as `best`."""

from __future__ import annotations

from openfl_cli.federation.specs import BestModelSpec
from openfl_cli.job.arguments import KeepsArguments


class IntimeModelSelector(KeepsArguments):
    """Keeps as `save/best.pbuf` the model whose round scored best on `key_metric`, the metric the
    clients report with their `train` results (averaged by sample count); lower is better with
    `negate_key_metric`. A server component: it becomes the aggregator's best-model setting."""

    def __init__(self, key_metric: str = "accuracy", negate_key_metric: bool = False) -> None:
        if not isinstance(key_metric, str) or not key_metric:
            raise ValueError(f"IntimeModelSelector: key_metric must be a metric name, got {key_metric!r}")
        if not isinstance(negate_key_metric, bool):
            raise ValueError(
                f"IntimeModelSelector: negate_key_metric must be true or false, got {negate_key_metric!r}"
            )
        self.key_metric = key_metric
        self.negate_key_metric = negate_key_metric

    def best_model(self) -> BestModelSpec:
        return BestModelSpec(
            task="train", metric=self.key_metric, higher_is_better=not self.negate_key_metric
        )
