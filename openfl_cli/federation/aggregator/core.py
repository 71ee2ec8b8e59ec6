"""The aggregator's round state machine, free of any transport (implements `FederationService`).

    OPEN(r) --results, straggler policy says close--> CLOSING(r) --outputs written--> OPEN(r+1) ... DONE

One `threading.Condition` guards the state. Long polls (`get_tasks`) wait on it and are answered the
moment a round opens; `run()` waits on it with the straggler policy's next deadline as timeout and
closes rounds. Results fold into the tasks' aggregation functions as they stream in (`ResultSink`);
a commit and the closing of a round exclude each other through `_fold_lock`. A task whose results are
all in is aggregated by `run()` right away, while the round waits for its other tasks.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING

from openfl_cli.errors import FxError
from openfl_cli.federation.aggregator.closing import aggregate, round_record, write_work
from openfl_cli.federation.aggregator.outputs import RoundOutputs
from openfl_cli.federation.aggregator.rounds import RoundState, TaskOutcome
from openfl_cli.federation.aggregator.sink import ResultSink, ResultSlots, check_metrics
from openfl_cli.federation.aggregator.writer import BackgroundWriter
from openfl_cli.federation.progress import AggregatorReporter, RoundSummary, WaitStatus
from openfl_cli.transport.messages import (
    Action,
    PingReply,
    RefusalCode,
    Refused,
    TaskAssignment,
    TaskFailure,
    TaskSpec,
)

if TYPE_CHECKING:
    import numpy as np

    from openfl_cli.federation.aggregation.function import AggregationFunction
    from openfl_cli.federation.assigner import TaskAssigner
    from openfl_cli.federation.straggler import StragglerHandling

log = logging.getLogger(__name__)

ROSTER_CHECK_SECONDS = 1.0  # how soon a collaborator taken out of the roster leaves the round
# Who may take part right now (cols.yaml as it is on disk); None when that cannot be read.
Roster = Callable[[], "Collection[str] | None"]


class ExperimentStopped(FxError):
    """The aggregator ended the experiment on an error (a failed task the straggler policy cannot do
    without, a model that does not fit, a write that failed). A restart resumes at the open round."""


class Aggregator:
    def __init__(
        self,
        *,
        plan_hash: str,
        collaborators: Sequence[str],
        tasks: Mapping[str, TaskSpec],
        assigner: TaskAssigner,
        straggler: StragglerHandling,
        functions: Mapping[str, AggregationFunction],
        model: Mapping[str, np.ndarray],
        rounds_to_train: int,
        outputs: RoundOutputs,
        start_round: int = 0,
        use_delta_updates: bool = False,
        name: str = "aggregator",
        quit_grace: float = 10.0,
        max_concurrent_results: int = 1,
        reporter: AggregatorReporter | None = None,
        clock: Callable[[], float] = time.monotonic,
        roster: Roster | None = None,
    ) -> None:
        """`roster`, when given, is asked about once a second who may still take part: a collaborator
        it no longer names (`fx collaborator remove`) leaves the open round at once."""
        self.plan_hash = plan_hash
        self.name = name
        self.collaborators = tuple(collaborators)
        self.rounds_to_train = rounds_to_train
        self._tasks = dict(tasks)
        self._assigner = assigner
        self._straggler = straggler
        self._functions = dict(functions)
        self._model: dict[str, np.ndarray] = dict(model)
        self._outputs = outputs
        self._use_delta = use_delta_updates
        self._quit_grace = quit_grace
        self._reporter = reporter
        self._clock = clock
        self._cond = threading.Condition()
        self._fold_lock = threading.Lock()
        self._slots = ResultSlots(max_concurrent_results)
        self._told_quit: set[str] = set()
        self._writer = BackgroundWriter()
        self._round: RoundState | None = None
        self._next_report = 0.0
        self._finished = start_round >= rounds_to_train
        self._stopped = False
        self._failure: str | None = None  # why the experiment stopped on an error
        self._polls: dict[str, int] = {}  # collaborator -> ticket of its current long poll
        self._polling: dict[str, int] = {}  # collaborator -> its polls in progress (a newer one ends them)
        self._roster = roster
        self._next_roster_check = 0.0
        self._left: set[str] = set()  # collaborators the roster dropped while the experiment ran
        if not self._finished:
            with self._cond:
                self._open_round(start_round)

    # -- FederationService -----------------------------------------------------------------------------

    def ping(self, collaborator: str) -> PingReply:
        with self._cond:
            number = self._round.number if self._round else self.rounds_to_train
        return PingReply(self.name, self.plan_hash, number, self.rounds_to_train)

    def get_tasks(self, collaborator: str, wait_seconds: float) -> TaskAssignment:
        """Long poll. A collaborator holds one: a newer poll of the same name ends the older at once
        (WAIT), so that no sender can hold many server threads with polls."""
        deadline = self._clock() + max(0.0, wait_seconds)
        with self._cond:
            ticket = self._polls.get(collaborator, 0) + 1
            self._polls[collaborator] = ticket
            if self._polling.get(collaborator):
                self._cond.notify_all()  # its older poll ends now
            self._polling[collaborator] = self._polling.get(collaborator, 0) + 1
            try:
                return self._answer_poll(collaborator, ticket, deadline)
            finally:
                left = self._polling[collaborator] - 1
                if left:
                    self._polling[collaborator] = left
                else:
                    del self._polling[collaborator]

    def _answer_poll(self, collaborator: str, ticket: int, deadline: float) -> TaskAssignment:
        """The long poll's loop (call with the condition held)."""
        while True:
            if self._failure is not None:
                self._told_quit.add(collaborator)
                self._cond.notify_all()
                return TaskAssignment(Action.ABORT, self.round_number_unlocked(), reason=self._failure)
            if self._stopped or self._polls.get(collaborator) != ticket:
                return TaskAssignment(Action.WAIT, self.round_number_unlocked())
            if self._finished:
                self._told_quit.add(collaborator)
                self._cond.notify_all()
                return TaskAssignment(Action.QUIT, self.rounds_to_train)
            state = self._round
            if state is not None and not state.closing:
                remaining = state.remaining(collaborator)
                if remaining:
                    return TaskAssignment(
                        Action.RUN, state.number, tuple(self._tasks[t] for t in remaining)
                    )
            left = deadline - self._clock()
            if left <= 0:
                return TaskAssignment(Action.WAIT, state.number if state else 0, retry_after=0.0)
            self._cond.wait(left)

    def model_for(self, collaborator: str, round_number: int) -> Mapping[str, np.ndarray]:
        with self._cond:
            state = self._current(round_number)
            if collaborator not in state.assignments:
                raise Refused(
                    RefusalCode.UNKNOWN_TASK, f"{collaborator} has no tasks in round {round_number}"
                )
            return self._model

    def report_failure(self, collaborator: str, failure: TaskFailure) -> None:
        """A task of `collaborator` failed: its unfinished tasks of the round end without a result,
        and the straggler policy decides whether the round can still close; if not, the experiment
        stops, naming who failed. A model that does not fit the collaborator's stops it at once."""
        with self._cond:
            state = self._current(failure.round_number)
            if failure.task_name not in state.tasks_of(collaborator):
                raise Refused(
                    RefusalCode.UNKNOWN_TASK,
                    f"task {failure.task_name!r} is not assigned to {collaborator} in round"
                    f" {failure.round_number}",
                )
            round_label = f"round {state.number + 1}"
            log.warning(
                "%s: %s failed on %s: %s", round_label, failure.task_name, collaborator, failure.reason
            )
            if failure.model_mismatch:
                self._fail(
                    f"{round_label}: the global model does not fit {collaborator}'s model"
                    f" ({failure.reason}); check the plan's initial model (`fx plan initialize`)"
                )
                return
            state.give_up(collaborator, failure.reason)
            if not self._straggler_can_succeed(state):
                failed = "; ".join(
                    f"{name}'s task failed ({why})" for name, why in sorted(state.gave_up.items())
                )
                without = "it" if len(state.gave_up) == 1 else "them"
                self._fail(
                    f"{round_label}: {failed}, and {type(self._straggler).__name__} cannot close the"
                    f" round without {without}"
                )
                return
            self._cond.notify_all()

    def open_result(
        self,
        collaborator: str,
        round_number: int,
        task_name: str,
        metrics: Mapping[str, float],
        sample_count: int,
        tensor_names: list[str],
    ) -> ResultSink:
        key = (collaborator, task_name)
        with self._cond:
            state = self._current(round_number)
            if task_name not in state.tasks_of(collaborator):
                raise Refused(
                    RefusalCode.UNKNOWN_TASK,
                    f"task {task_name!r} is not assigned to {collaborator} in round {round_number}",
                )
            if state.is_finished(key) or key in state.in_flight:
                done = "was already received" if state.is_finished(key) else "is being received"
                raise Refused(
                    RefusalCode.DUPLICATE, f"the result of {task_name!r} for round {round_number} {done}"
                )
            check_metrics(metrics, sample_count)
            state.in_flight.add(key)
            function = self._functions[task_name]
            model = self._model
            direct = bool(tensor_names) and self._take_lane(state, function, collaborator, task_name)
        sink = ResultSink(
            collaborator=collaborator,
            round_number=round_number,
            task=task_name,
            tensor_names=tensor_names,
            model=model,
            function=function,
            weight=sample_count,
            is_delta=self._use_delta,
            on_commit=lambda s: self._commit(s, dict(metrics), sample_count),
            on_abort=self._abort,
        )
        sink.holds_lane = direct
        if tensor_names and not direct and not self._slots.take(sink, self._round_open):
            with self._cond:
                state.in_flight.discard(key)
            raise Refused(RefusalCode.LATE, f"round {round_number} closed meanwhile")
        return sink

    # -- running ---------------------------------------------------------------------------------------

    def run(self) -> None:
        """Close rounds until the last one is done, then give collaborators time to hear QUIT."""
        try:
            while True:
                final_task: str | None = None
                with self._cond:
                    while not (self._finished or self._stopped or self._failure) and not self._closable():
                        final_task = self._final_task()
                        if final_task is not None:
                            break
                        self._cond.wait(self._wait_timeout())
                        self._report_wait()
                        self._check_roster()
                    if final_task is None:
                        if self._failure is not None or self._stopped or self._finished:
                            break
                        assert self._round is not None
                        self._round.closing = True
                        self._cond.notify_all()  # nothing waits for the lane of a closing round
                if final_task is not None:
                    self._aggregate_early(final_task)
                else:
                    self._close_round()
            self._writer.wait()
        except BaseException as exc:
            # the long polls answer at once (ABORT for an error), not when they time out
            with self._cond:
                if not isinstance(exc, Exception):
                    self._stopped = True
                elif self._failure is None:
                    self._failure = f"the aggregator failed: {exc}"
                self._cond.notify_all()
            self._writer.wait(raising=False)
            if isinstance(exc, Exception) and not isinstance(exc, FxError):
                # an unexpected error (a write that failed): one line, exit 1, the cause chained
                raise ExperimentStopped(self._failure or str(exc)) from exc
            raise
        if self._failure is not None:
            self._await_quit()
            raise ExperimentStopped(self._failure)
        if not self._stopped:
            self._await_quit()

    def stop(self) -> None:
        """Stop serving rounds (a signal): collaborators are not told to quit, they wait for a restart."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def round_number(self) -> int:
        with self._cond:
            return self.round_number_unlocked()

    def round_number_unlocked(self) -> int:
        return self._round.number if self._round else self.rounds_to_train

    @property
    def model(self) -> dict[str, np.ndarray]:
        with self._cond:
            return self._model

    # -- internals -------------------------------------------------------------------------------------

    def _current(self, round_number: int) -> RoundState:
        state = self._round
        if self._failure is not None:
            raise Refused(RefusalCode.LATE, f"the experiment stopped: {self._failure}")
        if state is None or self._finished:
            raise Refused(RefusalCode.LATE, f"round {round_number} is over: the experiment is finished")
        if round_number != state.number or state.closing:
            raise Refused(
                RefusalCode.LATE,
                f"round {round_number} is closed (the aggregator is at round {state.number}"
                f"{', closing' if state.closing and round_number == state.number else ''})",
            )
        return state

    def _open_round(self, number: int) -> None:
        assignments: dict[str, tuple[str, ...]] = {}
        for name in self.collaborators:
            tasks = tuple(self._assigner.tasks_for(name, number))
            if tasks:
                assignments[name] = tasks
        for function in self._functions.values():
            function.begin_round(number, self._model)
        now = self._clock()
        self._straggler.round_open(assignments, now)
        self._round = RoundState(number, assignments, now)
        log.info(
            "round %d/%d open: %d collaborator(s) with tasks",
            number + 1,
            self.rounds_to_train,
            len(assignments),
        )
        self._cond.notify_all()

    def _final_task(self) -> str | None:
        """A task whose results are final but not yet aggregated (call with the condition held)."""
        state = self._round
        if state is None:
            return None
        for task in self._functions:
            if task not in state.aggregated and state.is_task_final(task):
                return task
        return None

    def _aggregate_early(self, task: str) -> None:
        """Aggregate a task whose results are final while the round waits for its other tasks (the
        collaborators' local validation, typically): the close then has that much less to do. Only
        this thread closes rounds, so the round is still open; no result of `task` can come in."""
        state = self._round
        assert state is not None
        values = self._functions[task].end_round()
        with self._cond:
            # only what changed: unchanged tensors are the global arrays, which the round's record
            # (held by the background writer) would otherwise keep alive a round longer
            state.aggregated[task] = {
                name: value for name, value in values.items() if value is not self._model.get(name)
            }
        log.debug("round %d: %s aggregated ahead of the close", state.number + 1, task)

    def _closable(self) -> bool:
        state = self._round
        if state is None:
            return False
        finished = state.finished_collaborators()
        if len(finished) == len(state.assignments):
            return True
        # collaborators whose task failed are finished, but they did not report for the policy
        reported = finished - state.gave_up.keys() if state.gave_up else finished
        return self._straggler.can_close(reported, self._clock())

    def _straggler_can_succeed(self, state: RoundState) -> bool:
        """Whether the policy can still close the round while the collaborators that gave up never
        report (a policy without `can_succeed` closes the round without them)."""
        can_succeed = getattr(self._straggler, "can_succeed", None)
        return not callable(can_succeed) or bool(can_succeed(state.gave_up.keys()))

    def _fail(self, reason: str) -> None:
        """Stop the experiment on an error (call with the condition held): every long poll is answered
        ABORT with `reason`, and `run()` raises `ExperimentStopped` once they were told."""
        if self._failure is None:
            self._failure = reason
            log.error("stopping the experiment: %s", reason)
        self._cond.notify_all()

    def _check_roster(self) -> None:
        """Collaborators the roster no longer names leave the experiment (call with the condition held)."""
        if self._roster is None or self._clock() < self._next_roster_check:
            return
        self._next_roster_check = self._clock() + ROSTER_CHECK_SECONDS
        try:
            members = self._roster()
        except Exception:
            log.exception("reading the roster failed; the round keeps its collaborators")
            return
        if members is None:
            return
        for name in [name for name in self.collaborators if name not in members]:
            self._leave(name)

    def _leave(self, collaborator: str) -> None:
        self.collaborators = tuple(name for name in self.collaborators if name != collaborator)
        self._left.add(collaborator)
        state = self._round
        if state is not None and collaborator in state.assignments:
            state.drop(collaborator)
            remaining = {name: tasks for name, tasks in state.assignments.items() if name not in self._left}
            self._straggler.round_open(remaining, state.started_at)
            log.warning(
                "round %d: %s was removed from the federation; the round goes on without it",
                state.number + 1,
                collaborator,
            )
        else:
            log.warning("%s was removed from the federation", collaborator)
        self._cond.notify_all()

    def _wait_timeout(self) -> float:
        interval = self._reporter.interval if self._reporter else 5.0
        if self._roster is not None:
            interval = min(interval, ROSTER_CHECK_SECONDS)
        deadline = self._straggler.next_deadline(self._clock())
        if deadline is None:
            return interval
        return max(0.0, min(interval, deadline - self._clock()))

    def _report_wait(self) -> None:
        state = self._round
        if self._reporter is None or state is None:
            return
        now = self._clock()
        if now < self._next_report:  # woken by a result, not by the reporting interval
            return
        self._next_report = now + self._reporter.interval
        finished = state.finished_collaborators()
        pending = tuple(sorted(set(state.assignments) - finished))
        self._reporter.waiting(
            WaitStatus(
                state.number,
                self.rounds_to_train,
                len(finished),
                len(state.assignments),
                pending,
                self._clock() - state.started_at,
            )
        )

    def _round_open(self, round_number: int) -> bool:
        with self._cond:
            state = self._round
            return state is not None and state.number == round_number and not state.closing

    def _round_of(self, sink: ResultSink) -> RoundState | None:
        state = self._round
        return state if state is not None and state.number == sink.round_number else None

    @staticmethod
    def _take_lane(
        state: RoundState, function: AggregationFunction, collaborator: str, task_name: str
    ) -> bool:
        """Whether this result may stream in the task's direct lane (see `ResultSlots`)."""
        if not function.folds_first_result or task_name in state.direct_lanes:
            return False
        if state.has_committed(task_name):
            return False
        state.direct_lanes[task_name] = collaborator
        return True

    def _await_lane(self, sink: ResultSink) -> None:
        """A staged result commits after the result in its task's direct lane (committed or aborted):
        committing first would turn the lane's remaining tensors into staged copies (and its direct
        terms into extra sums), beyond the memory bound of the slots. It keeps its slot meanwhile."""
        if sink.holds_lane:
            return
        with self._cond:
            while not self._stopped:
                state = self._round_of(sink)
                holder = state.direct_lanes.get(sink.task) if state is not None else None
                if state is None or state.closing or holder is None:
                    return
                self._cond.wait()

    def _release(self, sink: ResultSink, state: RoundState | None) -> None:
        """Give back the sink's slot or lane (call with the condition held)."""
        self._slots.release(sink)
        if sink.holds_lane:
            sink.holds_lane = False
            if state is not None and state.direct_lanes.get(sink.task) == sink.collaborator:
                del state.direct_lanes[sink.task]
                self._cond.notify_all()  # staged results of the task may commit now

    def _commit(self, sink: ResultSink, metrics: dict[str, float], sample_count: int) -> None:
        key = (sink.collaborator, sink.task)
        try:
            self._await_lane(sink)
            with self._fold_lock:
                with self._cond:
                    state = self._current(sink.round_number)
                    if sink.collaborator in self._left:
                        raise Refused(
                            RefusalCode.NOT_AUTHORIZED, f"{sink.collaborator} was removed from the federation"
                        )
                sink.function.commit(sink.collaborator)
                with self._cond:
                    state.in_flight.discard(key)
                    state.record_commit(key, TaskOutcome(metrics, sample_count))
                    self._cond.notify_all()
        finally:
            with self._cond:
                self._release(sink, self._round_of(sink))
        log.debug("round %d: %s of %s received", sink.round_number, sink.task, sink.collaborator)

    def _abort(self, sink: ResultSink, reason: str, refused: bool) -> None:
        key = (sink.collaborator, sink.task)
        with self._cond:
            state = self._round_of(sink)
            self._release(sink, state)
            if state is not None:
                state.in_flight.discard(key)
                # nobody will send it again: a collaborator that gave up the round, or left
                gone = sink.collaborator in state.gave_up or sink.collaborator in self._left
                if refused or gone:
                    state.record_failure(key, reason)
            self._cond.notify_all()
        if refused:
            log.warning(
                "round %d: refused %s of %s: %s", sink.round_number, sink.task, sink.collaborator, reason
            )
        else:
            log.info(
                "round %d: %s of %s not received: %s", sink.round_number, sink.task, sink.collaborator, reason
            )

    def _close_round(self) -> None:
        state = self._round
        assert state is not None
        with self._fold_lock:  # waits for a commit in progress; later ones see `closing`
            start_model = self._model
            new_model = aggregate(self._functions, start_model, state.aggregated)
        self._writer.wait()  # the previous round is recorded before this one (and its error surfaces)
        with self._cond:
            record = round_record(state, self._outputs, start_model, new_model, self._functions)
            done, expected = len(state.finished_collaborators()), len(state.assignments)
        seconds = self._clock() - state.started_at

        def summary(improved: bool) -> RoundSummary:
            return RoundSummary(
                state.number, self.rounds_to_train, done, expected, record.aggregated, seconds, improved
            )

        work = write_work(self._outputs, record, self._reporter, summary)
        last = state.number + 1 >= self.rounds_to_train
        if last:  # collaborators hear QUIT only once the experiment's outputs are complete
            work()
            self._outputs.experiment_done(new_model)
        with self._cond:
            self._model = new_model
            if last:
                self._round = None
                self._finished = True
                self._cond.notify_all()
            else:
                self._open_round(state.number + 1)
        if not last:
            self._writer.submit(work)

    def _await_quit(self) -> None:
        deadline = self._clock() + self._quit_grace
        with self._cond:
            while not set(self.collaborators) <= self._told_quit:
                left = deadline - self._clock()
                if left <= 0:
                    missing = sorted(set(self.collaborators) - self._told_quit)
                    log.warning(
                        "not told to stop (did not ask in %.0f s): %s", self._quit_grace, ", ".join(missing)
                    )
                    return
                self._cond.wait(left)
        log.info("every collaborator was told the experiment is over")
