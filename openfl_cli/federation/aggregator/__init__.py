"""The aggregator: round state machine (`core`), result folding (`sink`), round outputs (`outputs`)."""

from openfl_cli.federation.aggregator.core import Aggregator
from openfl_cli.federation.aggregator.outputs import BestMetricRule, ResumePoint, RoundOutputs

__all__ = ["Aggregator", "BestMetricRule", "ResumePoint", "RoundOutputs"]
