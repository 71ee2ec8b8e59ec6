"""Running a training script for a task runner: in a thread of this process, or as a child process.

Both kinds give the runner the same handle: its end of the channel, whether the script still runs, a
bounded wait, a kill, and one line saying how the script ended (its exception and where it was raised,
taken from the traceback or from the child's last lines on stderr).

In-process the script's code runs as `__main__` in a fresh namespace (compile + exec, not runpy, which
swaps `sys.modules['__main__']` for the whole process), with a thread-specific `sys.argv` and its
session bound to its thread. Its folder goes on `sys.path` so it can import its neighbours. The
process's current directory is shared: relative paths in an in-process script are taken from wherever
the process runs (the workspace for `fx collaborator start`); ex-process scripts run in the workspace.
"""

from __future__ import annotations

import builtins
import collections
import os
import shlex
import subprocess
import sys
import threading
import traceback
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from openfl_cli.client.argv import bound_argv
from openfl_cli.client.channel import Endpoint, queue_pair, socket_pair
from openfl_cli.client.session import ENV_FD, ENV_FRAMEWORK, ENV_JOB, ENV_SITE, ClientSession, bound

KILL_GRACE_SECONDS = 5.0  # after SIGTERM, before SIGKILL
TAIL_LINES = 40
_path_lock = threading.Lock()


class ScriptHandle(ABC):
    """A started script as its runner sees it."""

    endpoint: Endpoint  # the runner's end of the channel

    @abstractmethod
    def alive(self) -> bool: ...

    @abstractmethod
    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the script to end; whether it has."""

    @abstractmethod
    def kill(self) -> bool:
        """Stop a script that did not end when asked; whether it could be stopped."""

    @abstractmethod
    def outcome(self) -> str:
        """How the script ended, in one line (or that it ended without an error)."""


def one_line(text: str) -> str:
    return " ".join(text.split())


# --- in-process ----------------------------------------------------------------------------------


class InProcessScript(ScriptHandle):
    """The script in a daemon thread, talking over a queue pair."""

    def __init__(
        self,
        path: Path,
        args: Sequence[str],
        site_name: str,
        job_id: str,
        framework: str,
        device: str | None = None,
    ) -> None:
        self.path = path
        self.device = device
        self.argv = [str(path), *args]
        self.endpoint, theirs = queue_pair()
        self._session = ClientSession(site_name, job_id, framework, endpoint=theirs)
        self._theirs = theirs
        self._error: str | None = None
        self._thread = threading.Thread(target=self._run, name=f"fx-script-{site_name}", daemon=True)

    def start(self) -> None:
        source = self.path.read_bytes()
        self._code = compile(source, str(self.path), "exec")  # a syntax error fails the start, here
        folder = str(self.path.parent)
        with _path_lock:
            if folder not in sys.path:
                sys.path.insert(0, folder)
        self._thread.start()

    def _run(self) -> None:
        namespace = {
            "__name__": "__main__",
            "__file__": str(self.path),
            "__builtins__": builtins,
            "__package__": None,
            "__spec__": None,
            "__loader__": None,
            "__cached__": None,
        }
        try:
            if self.device is not None:  # the current CUDA device is per thread: this site's own
                from openfl_cli.runners.torch_params import use_device

                use_device(self.device)
            with bound(self._session), bound_argv(self.argv):
                exec(self._code, namespace)
        except SystemExit as exc:
            if exc.code not in (None, 0):
                self._error = f"exited with status {exc.code}"
        except BaseException as exc:
            self._error = describe(exc, self.path)
        finally:
            self._theirs.close()  # the runner's receive learns at once that the script is gone

    def alive(self) -> bool:
        return self._thread.is_alive()

    def wait(self, timeout: float) -> bool:
        self._thread.join(max(0.0, timeout))
        return not self._thread.is_alive()

    def kill(self) -> bool:
        return not self._thread.is_alive()  # a thread cannot be stopped: it ends with the process

    def outcome(self) -> str:
        if self.alive():
            return "is still running"
        return f"raised {self._error}" if self._error else "ended without sending a result"


def describe(exc: BaseException, path: Path) -> str:
    """`Type: message (file, line N, in function)`, at the innermost frame of the script if any."""
    frames = traceback.extract_tb(exc.__traceback__)
    own = [frame for frame in frames if frame.filename == str(path)]
    text = one_line("".join(traceback.format_exception_only(type(exc), exc)))
    if not (own or frames):
        return text
    frame = (own or frames)[-1]
    return f"{text} ({Path(frame.filename).name}, line {frame.lineno}, in {frame.name})"


# --- ex-process ------------------------------------------------------------------------------------


def command_line(command: str, path: str | Path, args: Sequence[str]) -> list[str]:
    """`command script args`; a `python`/`python3` program becomes this interpreter (the venv's)."""
    words = shlex.split(command)
    if not words:
        raise ValueError("command must name a program, for example 'python3 -u'")
    if words[0] in ("python", "python3"):
        words[0] = sys.executable
    return [*words, str(path), *args]


class ExProcessScript(ScriptHandle):
    """The script as a child process in the workspace, talking over an inherited socketpair end."""

    def __init__(
        self,
        argv: Sequence[str],
        workspace: Path,
        site_name: str,
        job_id: str,
        framework: str,
        echo: IO[str] | None = None,
        stall_timeout: float = 600.0,
        device: str | None = None,
    ) -> None:
        """`stall_timeout`: how long a message half sent or half read may wait for the script.
        `device` ("cuda:N"): the only GPU the child sees (as its cuda:0)."""
        self.argv = list(argv)
        self._stall_timeout = stall_timeout
        self.workspace = workspace
        self._env = {ENV_SITE: site_name, ENV_JOB: job_id, ENV_FRAMEWORK: framework}
        if device is not None:
            self._env["CUDA_VISIBLE_DEVICES"] = device.removeprefix("cuda:")
        self._prefix = f"[{site_name}] "
        self._echo = echo
        self._tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None

    def start(self) -> None:
        self.endpoint, theirs = socket_pair(stall_timeout=self._stall_timeout)
        try:
            env = child_environment(os.environ, {**self._env, ENV_FD: str(theirs.fileno())})
            self._process = subprocess.Popen(
                self.argv,
                cwd=self.workspace,
                env=env,
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        except BaseException:
            self.endpoint.close()
            raise
        finally:
            theirs.close()  # the child holds its own copy: its exit ends the channel
        self._reader = threading.Thread(target=self._read_stderr, name="fx-script-stderr", daemon=True)
        self._reader.start()

    def _read_stderr(self) -> None:
        assert self._process is not None and self._process.stderr is not None
        echo = self._echo if self._echo is not None else sys.stderr
        for raw in self._process.stderr:
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            self._tail.append(line)
            try:
                echo.write(f"{self._prefix}{line}\n")
                echo.flush()
            except (OSError, ValueError):
                pass  # nowhere to echo to (closed at exit): the tail is still kept
        self._process.stderr.close()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def wait(self, timeout: float) -> bool:
        assert self._process is not None
        try:
            self._process.wait(max(0.0, timeout))
        except subprocess.TimeoutExpired:
            return False
        if self._reader is not None:
            self._reader.join(KILL_GRACE_SECONDS)  # the last lines of stderr
        return True

    def kill(self) -> bool:
        assert self._process is not None
        if self._process.poll() is None:
            self._process.terminate()
            if not self.wait(KILL_GRACE_SECONDS):
                self._process.kill()
                self.wait(KILL_GRACE_SECONDS)
        return self._process.poll() is not None

    def outcome(self) -> str:
        if self.alive() or self._process is None:
            return "is still running"
        status = self._process.returncode
        last = last_error_lines(list(self._tail))
        if status == 0:
            return "ended without sending a result" + (f" (last output: {last})" if last else "")
        return f"exited with status {status}" + (f": {last}" if last else "")


def child_environment(base: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """`base` plus `extra`, with this package importable in the child (whatever its cwd)."""
    env = {**base, **extra}
    root = str(Path(__file__).resolve().parents[2])
    paths = [part for part in env.get("PYTHONPATH", "").split(os.pathsep) if part]
    if root not in paths:
        env["PYTHONPATH"] = os.pathsep.join([*paths, root])
    return env


def last_error_lines(lines: Sequence[str]) -> str:
    """The exception line of a Python traceback in `lines` and where it was raised, in one line;
    else the last non-empty line."""
    text = [line for line in lines if line.strip()]
    if not text:
        return ""
    start = max((i for i, line in enumerate(text) if line.startswith("Traceback ")), default=None)
    if start is None:
        return one_line(text[-1])
    block = text[start + 1 :]
    frames = [i for i, line in enumerate(block) if line.lstrip().startswith('File "')]
    error = [line for line in block[frames[-1] + 1 :] if not line.startswith(" ")] if frames else block
    where = block[frames[-1]].strip() if frames else ""
    message = one_line(" ".join(error)) or one_line(block[-1])
    return f"{message} ({where})" if where else message
