"""What a client runs for its tasks: a training script (`ScriptRunner`) or an `Executor` object.

The client's task runner (`openfl_cli.client.runner.ScriptTaskRunner`) reads them from its settings:
a script as `script` (a path in the workspace), `script_args`, `launch_external_process`, `command`,
`framework`; an executor as `executor: {template, settings}`, built on the site and called with
`execute(task_name, model, site_name)`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openfl_cli.client.params import FRAMEWORKS
from openfl_cli.errors import UsageError
from openfl_cli.job.arguments import KeepsArguments

if TYPE_CHECKING:
    from openfl_cli.client import FLModel
    from openfl_cli.job.job import FedJob, JobCtx


class Executor(KeepsArguments, ABC):
    """Base of executors: a subclass implements `execute`; it is exported by class path and
    constructor arguments (keep each argument as an attribute of the same name) and built on the
    site, so its module is shipped with the job."""

    @abstractmethod
    def execute(self, task_name: str, model: FLModel, site_name: str) -> FLModel:
        """Run `task_name` on the global `model` at `site_name`; return the result."""


class ScriptRunner:
    """Runs a training script that uses the client API (`openfl_cli.client`).

    In-process (default), the script's `__main__` runs in the client's process with `script_args` as
    its argv; with `launch_external_process=True` the site runs `command script script_args` as a
    subprocess. `framework` says what the script's params are ("pytorch": torch tensors; "numpy",
    "tensorflow", "keras": NumPy arrays). The script (a path from the current folder) is shipped
    with the job as `src/<file name>`.
    """

    def __init__(
        self,
        script: str,
        script_args: str = "",
        launch_external_process: bool = False,
        command: str = "python3 -u",
        framework: str = "pytorch",
    ) -> None:
        if not isinstance(script, (str, Path)) or not str(script):
            raise ValueError(f"ScriptRunner: script must be a path, got {script!r}")
        if not isinstance(script_args, str):
            raise ValueError(f"ScriptRunner: script_args must be a string, got {script_args!r}")
        if not isinstance(launch_external_process, bool):
            raise ValueError(
                "ScriptRunner: launch_external_process must be true or false,"
                f" got {launch_external_process!r}"
            )
        if not isinstance(command, str) or not command.strip():
            raise ValueError(f"ScriptRunner: command must be a non-empty string, got {command!r}")
        kind = framework.value if isinstance(framework, Enum) else framework
        if not isinstance(kind, str) or kind.lower() not in FRAMEWORKS:
            raise ValueError(  # the frameworks the client runner converts params for
                f"ScriptRunner: framework must be one of {', '.join(FRAMEWORKS)}, got {framework!r}"
            )
        self.script = str(script)
        self.script_args = script_args
        self.launch_external_process = launch_external_process
        self.command = command
        self.framework = kind.lower()

    def script_file(self) -> Path:
        """The script as a file (relative to the current folder), checked to exist."""
        path = Path(self.script).expanduser().absolute()
        if not path.is_file():
            raise UsageError(f"ScriptRunner: script {self.script} not found (looked for {path})")
        return path

    def settings(self) -> dict[str, Any]:
        """The runner settings for this script, once shipped as `src/<file name>`."""
        return {
            "script": f"src/{Path(self.script).name}",
            "script_args": self.script_args,
            "launch_external_process": self.launch_external_process,
            "command": self.command,
            "framework": self.framework,
        }

    def add_to_fed_job(self, job: FedJob, ctx: JobCtx, tasks: list[str] | None = None) -> str:
        """Ship the script and make it the client's handler of `tasks` (default: all)."""
        if ctx.target == "server":
            raise UsageError("ScriptRunner: a script runs on clients; send it with to_clients() or to a site")
        job.add_resources([str(self.script_file())], ctx)
        return job.add_executor(self, tasks, ctx)
