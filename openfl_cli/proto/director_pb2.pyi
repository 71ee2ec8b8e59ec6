from openfl_cli.proto import federation_pb2 as _federation_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Ack(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HealthReport(_message.Message):
    __slots__ = ("experiment",)
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    experiment: str
    def __init__(self, experiment: _Optional[str] = ...) -> None: ...

class HealthReply(_message.Message):
    __slots__ = ("period_seconds",)
    PERIOD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    period_seconds: float
    def __init__(self, period_seconds: _Optional[float] = ...) -> None: ...

class WaitWorkRequest(_message.Message):
    __slots__ = ("wait_seconds",)
    WAIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    wait_seconds: float
    def __init__(self, wait_seconds: _Optional[float] = ...) -> None: ...

class Review(_message.Message):
    __slots__ = ("experiment", "hash", "archive", "submitted_by", "name")
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    ARCHIVE_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_BY_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    experiment: str
    hash: str
    archive: bytes
    submitted_by: str
    name: str
    def __init__(self, experiment: _Optional[str] = ..., hash: _Optional[str] = ..., archive: _Optional[bytes] = ..., submitted_by: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class ChainTask(_message.Message):
    __slots__ = ("experiment", "task", "step", "collaborators", "snapshots", "hash")
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    COLLABORATORS_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOTS_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    experiment: str
    task: str
    step: str
    collaborators: _containers.RepeatedScalarFieldContainer[str]
    snapshots: bool
    hash: str
    def __init__(self, experiment: _Optional[str] = ..., task: _Optional[str] = ..., step: _Optional[str] = ..., collaborators: _Optional[_Iterable[str]] = ..., snapshots: _Optional[bool] = ..., hash: _Optional[str] = ...) -> None: ...

class WorkItem(_message.Message):
    __slots__ = ("review", "chain", "ended")
    REVIEW_FIELD_NUMBER: _ClassVar[int]
    CHAIN_FIELD_NUMBER: _ClassVar[int]
    ENDED_FIELD_NUMBER: _ClassVar[int]
    review: Review
    chain: ChainTask
    ended: str
    def __init__(self, review: _Optional[_Union[Review, _Mapping]] = ..., chain: _Optional[_Union[ChainTask, _Mapping]] = ..., ended: _Optional[str] = ...) -> None: ...

class Decision(_message.Message):
    __slots__ = ("experiment", "hash", "accepted", "reason", "missing_requirements")
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MISSING_REQUIREMENTS_FIELD_NUMBER: _ClassVar[int]
    experiment: str
    hash: str
    accepted: bool
    reason: str
    missing_requirements: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, experiment: _Optional[str] = ..., hash: _Optional[str] = ..., accepted: _Optional[bool] = ..., reason: _Optional[str] = ..., missing_requirements: _Optional[_Iterable[str]] = ...) -> None: ...

class ChainStateRequest(_message.Message):
    __slots__ = ("experiment", "task")
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    experiment: str
    task: str
    def __init__(self, experiment: _Optional[str] = ..., task: _Optional[str] = ...) -> None: ...

class StepOutputProto(_message.Message):
    __slots__ = ("participant", "step", "stdout", "stderr", "seconds", "started")
    PARTICIPANT_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    STDOUT_FIELD_NUMBER: _ClassVar[int]
    STDERR_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    participant: str
    step: str
    stdout: str
    stderr: str
    seconds: float
    started: float
    def __init__(self, participant: _Optional[str] = ..., step: _Optional[str] = ..., stdout: _Optional[str] = ..., stderr: _Optional[str] = ..., seconds: _Optional[float] = ..., started: _Optional[float] = ...) -> None: ...

class TransitionProto(_message.Message):
    __slots__ = ("source", "target", "foreach", "has_include", "include", "has_exclude", "exclude")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    FOREACH_FIELD_NUMBER: _ClassVar[int]
    HAS_INCLUDE_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_FIELD_NUMBER: _ClassVar[int]
    HAS_EXCLUDE_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_FIELD_NUMBER: _ClassVar[int]
    source: str
    target: str
    foreach: str
    has_include: bool
    include: _containers.RepeatedScalarFieldContainer[str]
    has_exclude: bool
    exclude: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, source: _Optional[str] = ..., target: _Optional[str] = ..., foreach: _Optional[str] = ..., has_include: _Optional[bool] = ..., include: _Optional[_Iterable[str]] = ..., has_exclude: _Optional[bool] = ..., exclude: _Optional[_Iterable[str]] = ...) -> None: ...

class SnapshotInfo(_message.Message):
    __slots__ = ("step", "participant", "stdout", "stderr", "started", "finished", "failure")
    STEP_FIELD_NUMBER: _ClassVar[int]
    PARTICIPANT_FIELD_NUMBER: _ClassVar[int]
    STDOUT_FIELD_NUMBER: _ClassVar[int]
    STDERR_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    step: str
    participant: str
    stdout: str
    stderr: str
    started: float
    finished: float
    failure: str
    def __init__(self, step: _Optional[str] = ..., participant: _Optional[str] = ..., stdout: _Optional[str] = ..., stderr: _Optional[str] = ..., started: _Optional[float] = ..., finished: _Optional[float] = ..., failure: _Optional[str] = ...) -> None: ...

class ChainResultHeader(_message.Message):
    __slots__ = ("experiment", "task", "ok", "error", "transition", "outputs", "snapshots")
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    TRANSITION_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOTS_FIELD_NUMBER: _ClassVar[int]
    experiment: str
    task: str
    ok: bool
    error: str
    transition: TransitionProto
    outputs: _containers.RepeatedCompositeFieldContainer[StepOutputProto]
    snapshots: _containers.RepeatedCompositeFieldContainer[SnapshotInfo]
    def __init__(self, experiment: _Optional[str] = ..., task: _Optional[str] = ..., ok: _Optional[bool] = ..., error: _Optional[str] = ..., transition: _Optional[_Union[TransitionProto, _Mapping]] = ..., outputs: _Optional[_Iterable[_Union[StepOutputProto, _Mapping]]] = ..., snapshots: _Optional[_Iterable[_Union[SnapshotInfo, _Mapping]]] = ...) -> None: ...

class SubmissionHeader(_message.Message):
    __slots__ = ("name", "collaborators", "flow_class", "archive", "checkpoint")
    NAME_FIELD_NUMBER: _ClassVar[int]
    COLLABORATORS_FIELD_NUMBER: _ClassVar[int]
    FLOW_CLASS_FIELD_NUMBER: _ClassVar[int]
    ARCHIVE_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    name: str
    collaborators: _containers.RepeatedScalarFieldContainer[str]
    flow_class: str
    archive: bytes
    checkpoint: bool
    def __init__(self, name: _Optional[str] = ..., collaborators: _Optional[_Iterable[str]] = ..., flow_class: _Optional[str] = ..., archive: _Optional[bytes] = ..., checkpoint: _Optional[bool] = ...) -> None: ...

class ResultHeader(_message.Message):
    __slots__ = ("experiment",)
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    experiment: str
    def __init__(self, experiment: _Optional[str] = ...) -> None: ...

class StateHeader(_message.Message):
    __slots__ = ("submission", "task", "result", "final", "tensors")
    SUBMISSION_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    TENSORS_FIELD_NUMBER: _ClassVar[int]
    submission: SubmissionHeader
    task: ChainTask
    result: ChainResultHeader
    final: ResultHeader
    tensors: _containers.RepeatedCompositeFieldContainer[_federation_pb2.TensorHeader]
    def __init__(self, submission: _Optional[_Union[SubmissionHeader, _Mapping]] = ..., task: _Optional[_Union[ChainTask, _Mapping]] = ..., result: _Optional[_Union[ChainResultHeader, _Mapping]] = ..., final: _Optional[_Union[ResultHeader, _Mapping]] = ..., tensors: _Optional[_Iterable[_Union[_federation_pb2.TensorHeader, _Mapping]]] = ...) -> None: ...

class StateMessage(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: StateHeader
    chunk: _federation_pb2.Chunk
    def __init__(self, header: _Optional[_Union[StateHeader, _Mapping]] = ..., chunk: _Optional[_Union[_federation_pb2.Chunk, _Mapping]] = ...) -> None: ...

class OutputBatch(_message.Message):
    __slots__ = ("experiment", "lines")
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    experiment: str
    lines: _containers.RepeatedCompositeFieldContainer[OutputLine]
    def __init__(self, experiment: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[OutputLine, _Mapping]]] = ...) -> None: ...

class OutputLine(_message.Message):
    __slots__ = ("participant", "step", "stderr", "text")
    PARTICIPANT_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    STDERR_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    participant: str
    step: str
    stderr: bool
    text: str
    def __init__(self, participant: _Optional[str] = ..., step: _Optional[str] = ..., stderr: _Optional[bool] = ..., text: _Optional[str] = ...) -> None: ...

class ListEnvoysRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class EnvoyInfo(_message.Message):
    __slots__ = ("name", "online", "last_seen", "experiment")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ONLINE_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    name: str
    online: bool
    last_seen: float
    experiment: str
    def __init__(self, name: _Optional[str] = ..., online: _Optional[bool] = ..., last_seen: _Optional[float] = ..., experiment: _Optional[str] = ...) -> None: ...

class EnvoyList(_message.Message):
    __slots__ = ("envoys", "period_seconds")
    ENVOYS_FIELD_NUMBER: _ClassVar[int]
    PERIOD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    envoys: _containers.RepeatedCompositeFieldContainer[EnvoyInfo]
    period_seconds: float
    def __init__(self, envoys: _Optional[_Iterable[_Union[EnvoyInfo, _Mapping]]] = ..., period_seconds: _Optional[float] = ...) -> None: ...

class Submitted(_message.Message):
    __slots__ = ("experiment", "hash")
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    experiment: str
    hash: str
    def __init__(self, experiment: _Optional[str] = ..., hash: _Optional[str] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("experiment",)
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    experiment: str
    def __init__(self, experiment: _Optional[str] = ...) -> None: ...

class ExperimentEvent(_message.Message):
    __slots__ = ("output", "status", "finished")
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    output: OutputLine
    status: str
    finished: Finished
    def __init__(self, output: _Optional[_Union[OutputLine, _Mapping]] = ..., status: _Optional[str] = ..., finished: _Optional[_Union[Finished, _Mapping]] = ...) -> None: ...

class Finished(_message.Message):
    __slots__ = ("ok", "error")
    OK_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    error: str
    def __init__(self, ok: _Optional[bool] = ..., error: _Optional[str] = ...) -> None: ...

class ResultRequest(_message.Message):
    __slots__ = ("experiment",)
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    experiment: str
    def __init__(self, experiment: _Optional[str] = ...) -> None: ...
