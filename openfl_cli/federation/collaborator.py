"""The collaborator's task loop: ask for tasks, run them on the task runner, send the results.

    ping (fail fast on authorization or plan mismatch)
    loop: get_tasks (long poll) -> QUIT: done | ABORT: the experiment stopped | WAIT: ask again |
          RUN: for each task: load the right weights (global or locally trained), run
          `function(**kwargs)`, send the result

A task that raises is reported to the aggregator (its exception in one line) and the round's other tasks
are skipped; the aggregator's straggler policy decides whether the round goes on without this
collaborator, which then waits for the next round. Before its first task the collaborator checks that
the global model fits its runner's model (every tensor there, of the same shape), and reports a misfit.

The global model of a round is downloaded once; the locally trained weights are kept for `apply: local`
tasks, and uploaded while such a validation runs (results still arrive in task order). A collaborator
restarted mid-round gets only the tasks it has not finished; when one of them validates the local model
it no longer has, it trains again first (training is deterministic given the round), without sending
that result twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

import numpy as np

from openfl_cli.errors import FxError
from openfl_cli.federation.model_fit import misfit
from openfl_cli.federation.progress import TaskProgress
from openfl_cli.federation.specs import is_training
from openfl_cli.federation.update import ModelUpdate
from openfl_cli.transport.link import AggregatorLink
from openfl_cli.transport.messages import Action, RefusalCode, Refused, SendReport, TaskFailure, one_line
from openfl_cli.utils.background import BackgroundCall

if TYPE_CHECKING:
    from openfl_cli.transport.messages import TaskSpec

log = logging.getLogger(__name__)

# f(node, task, metric, round, value), as on the aggregator
MetricCallback = Callable[[str, str, str, int, float], object]
# Tasks that leave the runner's weights as they found them (they only evaluate).
VALIDATION_FUNCTIONS = ("validate_task", "validate")


class TaskRunner(Protocol):
    """What the collaborator needs from a task runner (`runners.base.TaskRunner` is one): load the
    weights of a round, and tasks as methods `function(round_number, task_name=..., **kwargs)` that
    return a `ModelUpdate`."""

    def rebuild_model(
        self,
        tensors: Mapping[str, np.ndarray],
        opt_treatment: str = "RESET",
        validation: bool = False,
        *,
        weights_loaded: bool = False,
    ) -> None: ...


@dataclass
class _Sending:
    """A task's result on its way to the aggregator (`call` set while it is sent in the background)."""

    task: TaskSpec
    label: str
    seconds: float
    result: ModelUpdate
    with_tensors: bool
    call: BackgroundCall[SendReport] | None = None


@dataclass
class _Round:
    number: int
    global_model: dict[str, np.ndarray]
    local_model: dict[str, np.ndarray] | None = None


class Collaborator:
    def __init__(
        self,
        name: str,
        runner: TaskRunner,
        link: AggregatorLink,
        *,
        opt_treatment: str = "RESET",
        use_delta_updates: bool = False,
        training_task: TaskSpec | None = None,
        poll_seconds: float = 30.0,
        retry_interval: float = 5.0,
        metric_callback: MetricCallback | None = None,
        progress: TaskProgress | None = None,
        background_upload: bool = True,
    ) -> None:
        """`background_upload`: send trained weights while a following validation runs (worth it over
        a network; an in-process link copies in microseconds and a thread would only cost)."""
        self.name = name
        self.runner = runner
        self.link = link
        self.opt_treatment = opt_treatment
        self.use_delta_updates = use_delta_updates
        self.training_task = training_task
        self.poll_seconds = poll_seconds
        self.retry_interval = retry_interval
        self.metric_callback = metric_callback
        self.progress = progress or TaskProgress()
        self.background_upload = background_upload
        self.rounds_to_train = 0
        self.rounds_worked: set[int] = set()
        self._round: _Round | None = None
        self._refused: set[tuple[int, str]] = set()
        # The tensors the runner's weights equal right now, if known: loading them again is skipped
        # (a validation, then training on the same global model; the local validation of the result).
        self._runner_holds: Mapping[str, np.ndarray] | None = None
        self._sending: _Sending | None = None  # a result sent in the background, until settled
        self._fit_unchecked = False  # set by `run`: check the first global model against the runner's

    def run(self) -> int:
        """Work until the aggregator says the experiment is over; return the number of rounds worked.
        The runner is closed at the end, however it comes (a script runner ends its script)."""
        try:
            return self._work()
        finally:
            self._close_runner()

    def _close_runner(self) -> None:
        close = getattr(self.runner, "close", None)  # optional: the collaborator's protocol lacks it
        if not callable(close):
            return
        try:
            close()
        except Exception:
            log.exception("closing the task runner failed")

    def _work(self) -> int:
        self._fit_unchecked = True
        reply = self.link.ping()
        self.rounds_to_train = reply.rounds_to_train
        log.info(
            "connected to %s: round %d of %d", reply.aggregator, reply.round_number + 1, reply.rounds_to_train
        )
        while True:
            assignment = self.link.get_tasks(self.poll_seconds)
            if assignment.action is Action.QUIT:
                self.progress.line(
                    f"{self.name}: the experiment is over ({len(self.rounds_worked)} round(s) worked)"
                )
                return len(self.rounds_worked)
            if assignment.action is Action.ABORT:
                reason = assignment.reason or "no reason given"
                raise FxError(f"the aggregator stopped the experiment: {reason}")
            if assignment.action is Action.RUN:
                self.run_round(assignment.round_number, assignment.tasks)
            elif assignment.retry_after > 0:
                time.sleep(assignment.retry_after)

    def run_round(self, round_number: int, tasks: tuple[TaskSpec, ...]) -> None:
        todo = [task for task in tasks if (round_number, task.name) not in self._refused]
        if not todo:
            # Everything left was refused this round: nothing useful to do until the round changes.
            time.sleep(self.retry_interval)
            return
        try:
            state = self._state_for(round_number)
        except Refused as refused:
            if refused.code is not RefusalCode.LATE:
                raise
            log.info("round %d: %s; asking for new tasks", round_number + 1, refused.reason)
            return
        if self._fit_unchecked:
            misfit = self._misfit(state.global_model)
            self._fit_unchecked = False
            if misfit:
                self._report_failure(state, todo[0], misfit, model_mismatch=True)
                return
        try:
            for index, task in enumerate(todo):
                following = todo[index + 1] if index + 1 < len(todo) else None
                if not self._run_task(state, task, following):
                    return
            if not self._settle(state):
                return
        finally:
            self._abandon(state)
        self.rounds_worked.add(round_number)

    # -- one task ----------------------------------------------------------------------------------------

    def _state_for(self, round_number: int) -> _Round:
        if self._round is None or self._round.number != round_number:
            self._round = None  # let the previous round's tensors go before downloading
            started = time.monotonic()
            model = self.link.get_model(round_number)
            log.info(
                "round %d: global model received (%d tensors, %.1f MB) in %.2f s",
                round_number + 1,
                len(model),
                _megabytes(model),
                time.monotonic() - started,
            )
            self._round = _Round(round_number, model)
        return self._round

    def _run_task(self, state: _Round, task: TaskSpec, following: TaskSpec | None) -> bool:
        """Run `task` and send its result; False when the round's other tasks should not run.

        A result with tensors is sent in the background while `following` runs, when that is a
        validation: it leaves the weights alone, and the upload hides behind its compute. Results
        still reach the aggregator in task order: a send starts only after the previous one ended."""
        label = f"round {state.number + 1}/{self.rounds_to_train} {task.name}"
        started = time.monotonic()
        try:
            with self.progress.task(label):
                result = self._execute(state, task)
        except Exception as exc:
            log.debug("task %s failed", task.name, exc_info=True)
            self._report_failure(state, task, str(exc) if isinstance(exc, FxError) else _described(exc))
            return False
        seconds = time.monotonic() - started
        if not self._settle(state):
            return False
        tensors = self._upload_tensors(state, result) if result.has_tensors else {}

        def send() -> SendReport:
            metrics, count = result.metrics, result.sample_count
            return self.link.send_result(state.number, task.name, metrics, count, tensors)

        sending = _Sending(task, label, seconds, result, bool(tensors))
        if (
            self.background_upload
            and tensors
            and following is not None
            and following.function in VALIDATION_FUNCTIONS
        ):
            sending.call = BackgroundCall(send, name="fx-upload")
            self._sending = sending
            return True
        try:
            report = send()
        except Refused as refused:
            return self._after_refusal(state, task, refused)
        self._report_sent(state, sending, report)
        return True

    def _report_failure(
        self, state: _Round, task: TaskSpec, reason: str, *, model_mismatch: bool = False
    ) -> None:
        """Tell the aggregator that `task` failed; the round's other tasks are not run."""
        self._abandon(state)  # a result on its way still arrives before the report
        reason = one_line(reason)
        log.error("round %d, %s failed: %s (the aggregator is told)", state.number + 1, task.name, reason)
        try:
            self.link.report_failure(TaskFailure(state.number, task.name, reason, model_mismatch))
        except Refused as refused:
            if refused.code is not RefusalCode.LATE:
                raise
            log.info("round %d: %s", state.number + 1, refused.reason)

    def _misfit(self, model: Mapping[str, np.ndarray]) -> str:
        """What keeps the global `model` from loading into the runner's model ("" when it fits, or the
        runner cannot tell): its tensors missing there, or there with another shape."""
        own = getattr(self.runner, "get_tensor_dict", None)
        if not callable(own):
            return ""
        try:
            reference: Mapping[str, np.ndarray] = own(with_opt_vars=False)
        except Exception:  # a runner that cannot tell before its first task (a script runner)
            log.debug("the task runner cannot list its tensors yet", exc_info=True)
            return ""
        return misfit(reference, model)

    def _settle(self, state: _Round) -> bool:
        """Wait for the result being sent in the background; False when the round should stop."""
        sending, self._sending = self._sending, None
        if sending is None or sending.call is None:
            return True
        try:
            report = sending.call.outcome()
        except Refused as refused:
            return self._after_refusal(state, sending.task, refused)
        self._report_sent(state, sending, report)
        return True

    def _abandon(self, state: _Round) -> None:
        """After an error: let a background send finish (its result is valid) without raising over it."""
        sending, self._sending = self._sending, None
        if sending is None or sending.call is None:
            return
        try:
            report = sending.call.outcome()
        except Exception as exc:
            log.warning("sending the result of %s failed: %s", sending.task.name, exc)
            return
        self._report_sent(state, sending, report)

    def _after_refusal(self, state: _Round, task: TaskSpec, refused: Refused) -> bool:
        """Whether the round's other tasks still run after `task`'s result was refused."""
        if refused.code is RefusalCode.LATE:
            log.info("round %d, %s: %s; moving on", state.number + 1, task.name, refused.reason)
            return False
        if refused.code is RefusalCode.DUPLICATE:  # an earlier attempt arrived; its reply was lost
            log.info("round %d, %s: %s; going on", state.number + 1, task.name, refused.reason)
            return True
        if refused.code in (RefusalCode.INVALID, RefusalCode.UNKNOWN_TASK):
            log.error("round %d, %s refused: %s", state.number + 1, task.name, refused)
            self._refused.add((state.number, task.name))
            return True
        raise refused

    def _report_sent(self, state: _Round, sending: _Sending, report: SendReport) -> None:
        result = sending.result
        self._report_metrics(sending.task.name, state.number, result.metrics)
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in result.metrics.items()) or "no metrics"
        sent = ""
        if sending.with_tensors:
            saved = report.raw_bytes - report.sent_bytes
            sent = f", sent {report.sent_bytes / 1e6:.2f} MB"
            if saved > 0:
                sent += f" ({saved / 1e6:.2f} MB saved by compression)"
        self.progress.line(
            f"{sending.label}: {metrics} ({result.sample_count} samples), {sending.seconds:.2f} s{sent}"
        )

    def _execute(self, state: _Round, task: TaskSpec) -> ModelUpdate:
        if is_training(task.function):
            self._load(state.global_model, validation=False)
        elif task.kwargs.get("apply") == "local":
            if state.local_model is None:
                self._train_again(state)
            assert state.local_model is not None
            self._load(state.local_model, validation=True)
        else:
            self._load(state.global_model, validation=True)
        result, trained = self._run(task, state.number)
        if trained is not None:
            state.local_model = trained
        return result

    def _train_again(self, state: _Round) -> None:
        if self.training_task is None:
            raise FxError(
                f"round {state.number + 1}: no locally trained model to validate and no training task"
            )
        log.info(
            "round %d: no locally trained model (restarted?): training again to validate it", state.number + 1
        )
        self._load(state.global_model, validation=False)
        state.local_model = self._run(self.training_task, state.number)[1]

    def _load(self, tensors: Mapping[str, np.ndarray], *, validation: bool) -> None:
        loaded = self._runner_holds is tensors
        self._runner_holds = None  # unknown until the load succeeds
        self.runner.rebuild_model(tensors, self.opt_treatment, validation=validation, weights_loaded=loaded)
        self._runner_holds = tensors

    def _run(self, task: TaskSpec, round_number: int) -> tuple[ModelUpdate, dict[str, np.ndarray] | None]:
        """Call the task, keeping track of what the runner's weights are afterwards; also return the
        update's tensors as one flat mapping (the local model), None when it has none."""
        held, self._runner_holds = self._runner_holds, None  # unknown while it runs (it may fail)
        result = self._call(task, round_number)
        trained = result.tensors if result.has_tensors else None
        if is_training(task.function):
            # a training task returns the weights it trained, which the runner now holds
            self._runner_holds = trained
        elif task.function in VALIDATION_FUNCTIONS:
            self._runner_holds = held
        return result, trained

    def _call(self, task: TaskSpec, round_number: int) -> ModelUpdate:
        function = getattr(self.runner, task.function, None)
        if not callable(function):
            raise FxError(f"task {task.name!r}: the task runner has no method {task.function!r}")
        try:
            result = function(round_number, task_name=task.name, **task.kwargs)
        except FxError:
            raise
        except Exception as exc:
            log.debug("task %s failed", task.name, exc_info=True)
            raise FxError(
                f"task {task.name!r} ({task.function}) failed: {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(result, ModelUpdate):
            raise FxError(
                f"task {task.name!r} ({task.function}) returned {type(result).__name__}, not a ModelUpdate"
            )
        return result

    def _upload_tensors(self, state: _Round, result: ModelUpdate) -> dict[str, np.ndarray]:
        """The trained tensors to send: optimizer state only for CONTINUE_GLOBAL, deltas when asked."""
        with_opt = self.opt_treatment == "CONTINUE_GLOBAL"
        update = result if with_opt else replace(result, optimizer_state={})
        if self.use_delta_updates:
            try:
                update = update.delta_from(state.global_model)
            except ValueError as exc:
                raise FxError(str(exc)) from None
        return update.flat(with_optimizer=with_opt)

    def _report_metrics(self, task: str, round_number: int, metrics: Mapping[str, float]) -> None:
        if self.metric_callback is None:
            return
        for metric, value in metrics.items():
            try:
                self.metric_callback(self.name, task, metric, round_number, value)
            except Exception:
                log.exception("log_metric_callback failed on %s/%s", task, metric)


def _described(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _megabytes(tensors: Mapping[str, np.ndarray]) -> float:
    return sum(array.nbytes for array in tensors.values()) / 1e6
