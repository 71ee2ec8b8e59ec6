"""The live side of a script runner: start the script once, hand it tasks, wait for its answers, end it.

Every wait is bounded: a task's answer by `round_timeout`, the end by `close_timeout` (then an
ex-process script is killed). A script that raised, exited or sent garbage can no longer answer: the
error says how it ended (its exception and where) and every later task raises the same error.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path

from openfl_cli.client.channel import ChannelClosed, ChannelError, Message
from openfl_cli.client.launch import ExProcessScript, InProcessScript, ScriptHandle, command_line, one_line
from openfl_cli.client.model import FLModel, ParamsType
from openfl_cli.client.params import from_script
from openfl_cli.client.settings import ScriptSettings
from openfl_cli.errors import FxError

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5  # how often a wait checks that the script is still alive


class ScriptError(FxError):
    """The script failed, ended, timed out or answered wrongly; the text names the script and site."""


class ScriptDriver:
    """One site's running script. `who` names it in errors; `on_log` gets its `flare.log` messages."""

    def __init__(
        self,
        options: ScriptSettings,
        path: Path,
        workspace: Path,
        site_name: str,
        job_id: str,
        who: str,
        on_log: Callable[[Message], None],
    ) -> None:
        self.options = options
        self.path = path
        self.workspace = workspace
        self.site_name = site_name
        self.job_id = job_id
        self.who = who
        self.on_log = on_log
        self._handle: ScriptHandle | None = None
        self._failure: ScriptError | None = None
        self._closed = False
        self._seq = 0

    def ask(self, task: str, round_number: int, model: FLModel) -> FLModel:
        """Hand `model` to the script as `task` ("train" or "evaluate"); its answer, params as arrays."""
        handle = self._started()
        self._seq += 1
        message = Message(
            kind="task",
            seq=self._seq,
            task=task,
            round=round_number,
            total_rounds=model.total_rounds,
            params=from_script(model.params, "numpy") if model.params is not None else None,
            params_type=ParamsType(model.params_type or ParamsType.FULL).value,
            meta=model.meta,
        )
        try:
            handle.endpoint.send(message)
        except ChannelClosed:
            raise self._died(handle, round_number) from None
        except ChannelError as exc:  # a message that cannot travel, or a script that stopped reading
            raise ScriptError(
                f"{self.who}: the task of round {round_number + 1} was not sent: {exc}"
            ) from None
        answer = self._await(handle, self._seq, round_number)
        return FLModel(
            params=answer.params,
            params_type=answer.params_type,
            metrics=answer.metrics,
            current_round=answer.round,
            meta=answer.meta,
        )

    def _started(self) -> ScriptHandle:
        if self._failure is not None:
            raise self._failure
        if self._closed:
            raise ScriptError(f"{self.who}: the runner was closed")
        if self._handle is not None:
            return self._handle
        if not self.path.is_file():
            raise ScriptError(f"{self.who}: no such file {self.path}")
        options = self.options
        handle: InProcessScript | ExProcessScript
        if options.launch_external_process:
            argv = command_line(options.command, self.path, options.args)
            handle = ExProcessScript(
                argv,
                self.workspace,
                self.site_name,
                self.job_id,
                options.framework,
                stall_timeout=max(options.round_timeout, 60.0),  # a model may take that long to read
                device=options.device,
            )
        else:
            handle = InProcessScript(
                self.path, options.args, self.site_name, self.job_id, options.framework, device=options.device
            )
        try:
            handle.start()
        except (OSError, SyntaxError, ValueError) as exc:
            raise ScriptError(f"{self.who} could not start: {one_line(str(exc))}") from None
        log.info(
            "%s: started (%s)", self.who, "ex-process" if options.launch_external_process else "in-process"
        )
        self._handle = handle
        return handle

    def _await(self, handle: ScriptHandle, seq: int, round_number: int) -> Message:
        timeout = self.options.round_timeout
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ScriptError(
                    f"{self.who}: no result for round {round_number + 1} within {timeout:g} s (round_timeout)"
                )
            try:
                message = handle.endpoint.receive(min(remaining, POLL_SECONDS))
            except ChannelClosed:
                raise self._died(handle, round_number) from None
            except ChannelError as exc:
                raise self._died(handle, round_number, f"sent a malformed message: {exc}") from None
            if message is None:
                if not handle.alive():
                    raise self._died(handle, round_number)
            elif message.kind == "log":
                self.on_log(message)
            elif message.kind == "result" and message.seq == seq:
                return message
            else:  # the answer to a task that timed out
                log.warning("%s: ignoring a late %s message (task %d)", self.who, message.kind, message.seq)

    def _died(self, handle: ScriptHandle, round_number: int, reason: str | None = None) -> ScriptError:
        if not handle.wait(POLL_SECONDS * 4):
            handle.kill()
        error = ScriptError(f"{self.who} failed in round {round_number + 1}: {reason or handle.outcome()}")
        self._failure = error
        return error

    def close(self) -> None:
        """Tell the script the job has ended (`receive()` returns None), read what it still logs, give
        it `close_timeout` seconds to end, then kill it (a thread cannot be killed: it is left to end
        with the process)."""
        if self._closed:
            return
        self._closed = True
        handle, self._handle = self._handle, None
        if handle is None:
            return
        with contextlib.suppress(ChannelError):  # gone already
            handle.endpoint.send(Message(kind="end"))
        deadline = time.monotonic() + self.options.close_timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                message = handle.endpoint.receive(min(POLL_SECONDS, remaining))
            except ChannelError:
                break  # it closed its side: it has ended
            if message is not None and message.kind == "log":
                self.on_log(message)
            elif message is None and not handle.alive():
                break
        if not handle.wait(deadline - time.monotonic()):
            stopped = handle.kill()
            log.warning(
                "%s did not end within %g s of the job's end: %s",
                self.who,
                self.options.close_timeout,
                "killed" if stopped else "left running (a thread ends with the process)",
            )
        handle.endpoint.close()
