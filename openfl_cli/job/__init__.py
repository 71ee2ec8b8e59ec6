"""The FedJob API: build a federated job in Python, export it as an `fx` workspace, or run it on the
simulator. See `openfl_cli.job.job` for how objects are sent to the server and the clients."""

from openfl_cli.job.apps import ALL_SITES
from openfl_cli.job.controllers import Controller, FedAvg
from openfl_cli.job.executors import Executor, ScriptRunner
from openfl_cli.job.filters import ExcludeVars, Filter, FilterType, PercentilePrivacy
from openfl_cli.job.job import FedJob, JobCtx
from openfl_cli.job.models import PTModel, TFModel
from openfl_cli.job.patterns import FedAvgJob
from openfl_cli.job.selectors import IntimeModelSelector

__all__ = [
    "ALL_SITES",
    "Controller",
    "ExcludeVars",
    "Executor",
    "FedAvg",
    "FedAvgJob",
    "FedJob",
    "Filter",
    "FilterType",
    "IntimeModelSelector",
    "JobCtx",
    "PTModel",
    "PercentilePrivacy",
    "ScriptRunner",
    "TFModel",
]
