"""The Workflow API: a federated experiment written as a flow of Python steps, each placed on the
aggregator or on the collaborators, run by a runtime."""

from openfl_cli.workflow.aggregation import fedavg
from openfl_cli.workflow.checkpoint_reader import CheckpointedModels, best_and_last
from openfl_cli.workflow.federated_runtime import FederatedRuntime
from openfl_cli.workflow.flow_graph import FlowGraph
from openfl_cli.workflow.flspec import FLSpec
from openfl_cli.workflow.participants import Aggregator, Collaborator
from openfl_cli.workflow.placement import aggregator, collaborator
from openfl_cli.workflow.runtime import LocalRuntime

__all__ = [
    "Aggregator",
    "CheckpointedModels",
    "Collaborator",
    "FLSpec",
    "FederatedRuntime",
    "FlowGraph",
    "LocalRuntime",
    "aggregator",
    "best_and_last",
    "collaborator",
    "fedavg",
]
