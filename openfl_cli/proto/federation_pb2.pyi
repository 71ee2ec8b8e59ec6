from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PingRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PingResponse(_message.Message):
    __slots__ = ("aggregator", "plan_hash", "round_number", "rounds_to_train")
    AGGREGATOR_FIELD_NUMBER: _ClassVar[int]
    PLAN_HASH_FIELD_NUMBER: _ClassVar[int]
    ROUND_NUMBER_FIELD_NUMBER: _ClassVar[int]
    ROUNDS_TO_TRAIN_FIELD_NUMBER: _ClassVar[int]
    aggregator: str
    plan_hash: str
    round_number: int
    rounds_to_train: int
    def __init__(self, aggregator: _Optional[str] = ..., plan_hash: _Optional[str] = ..., round_number: _Optional[int] = ..., rounds_to_train: _Optional[int] = ...) -> None: ...

class GetTasksRequest(_message.Message):
    __slots__ = ("wait_seconds",)
    WAIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    wait_seconds: float
    def __init__(self, wait_seconds: _Optional[float] = ...) -> None: ...

class TaskProto(_message.Message):
    __slots__ = ("name", "function", "kwargs_json")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    KWARGS_JSON_FIELD_NUMBER: _ClassVar[int]
    name: str
    function: str
    kwargs_json: str
    def __init__(self, name: _Optional[str] = ..., function: _Optional[str] = ..., kwargs_json: _Optional[str] = ...) -> None: ...

class TaskAssignmentProto(_message.Message):
    __slots__ = ("action", "round_number", "tasks", "retry_after", "reason")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    ROUND_NUMBER_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    action: str
    round_number: int
    tasks: _containers.RepeatedCompositeFieldContainer[TaskProto]
    retry_after: float
    reason: str
    def __init__(self, action: _Optional[str] = ..., round_number: _Optional[int] = ..., tasks: _Optional[_Iterable[_Union[TaskProto, _Mapping]]] = ..., retry_after: _Optional[float] = ..., reason: _Optional[str] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ("round_number",)
    ROUND_NUMBER_FIELD_NUMBER: _ClassVar[int]
    round_number: int
    def __init__(self, round_number: _Optional[int] = ...) -> None: ...

class ParamValue(_message.Message):
    __slots__ = ("text", "integer", "real")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    INTEGER_FIELD_NUMBER: _ClassVar[int]
    REAL_FIELD_NUMBER: _ClassVar[int]
    text: str
    integer: int
    real: float
    def __init__(self, text: _Optional[str] = ..., integer: _Optional[int] = ..., real: _Optional[float] = ...) -> None: ...

class TensorHeader(_message.Message):
    __slots__ = ("name", "dtype", "shape", "encoding", "params", "nbytes", "raw_nbytes")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ParamValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ParamValue, _Mapping]] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    NBYTES_FIELD_NUMBER: _ClassVar[int]
    RAW_NBYTES_FIELD_NUMBER: _ClassVar[int]
    name: str
    dtype: str
    shape: _containers.RepeatedScalarFieldContainer[int]
    encoding: str
    params: _containers.MessageMap[str, ParamValue]
    nbytes: int
    raw_nbytes: int
    def __init__(self, name: _Optional[str] = ..., dtype: _Optional[str] = ..., shape: _Optional[_Iterable[int]] = ..., encoding: _Optional[str] = ..., params: _Optional[_Mapping[str, ParamValue]] = ..., nbytes: _Optional[int] = ..., raw_nbytes: _Optional[int] = ...) -> None: ...

class Chunk(_message.Message):
    __slots__ = ("offset", "data")
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    offset: int
    data: bytes
    def __init__(self, offset: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class ModelHeader(_message.Message):
    __slots__ = ("round_number", "tensors")
    ROUND_NUMBER_FIELD_NUMBER: _ClassVar[int]
    TENSORS_FIELD_NUMBER: _ClassVar[int]
    round_number: int
    tensors: _containers.RepeatedCompositeFieldContainer[TensorHeader]
    def __init__(self, round_number: _Optional[int] = ..., tensors: _Optional[_Iterable[_Union[TensorHeader, _Mapping]]] = ...) -> None: ...

class ModelMessage(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: ModelHeader
    chunk: Chunk
    def __init__(self, header: _Optional[_Union[ModelHeader, _Mapping]] = ..., chunk: _Optional[_Union[Chunk, _Mapping]] = ...) -> None: ...

class ResultHeader(_message.Message):
    __slots__ = ("round_number", "task_name", "metrics", "sample_count", "tensors")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ROUND_NUMBER_FIELD_NUMBER: _ClassVar[int]
    TASK_NAME_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    TENSORS_FIELD_NUMBER: _ClassVar[int]
    round_number: int
    task_name: str
    metrics: _containers.ScalarMap[str, float]
    sample_count: int
    tensors: _containers.RepeatedCompositeFieldContainer[TensorHeader]
    def __init__(self, round_number: _Optional[int] = ..., task_name: _Optional[str] = ..., metrics: _Optional[_Mapping[str, float]] = ..., sample_count: _Optional[int] = ..., tensors: _Optional[_Iterable[_Union[TensorHeader, _Mapping]]] = ...) -> None: ...

class ResultMessage(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: ResultHeader
    chunk: Chunk
    def __init__(self, header: _Optional[_Union[ResultHeader, _Mapping]] = ..., chunk: _Optional[_Union[Chunk, _Mapping]] = ...) -> None: ...

class SendResultResponse(_message.Message):
    __slots__ = ("received_bytes",)
    RECEIVED_BYTES_FIELD_NUMBER: _ClassVar[int]
    received_bytes: int
    def __init__(self, received_bytes: _Optional[int] = ...) -> None: ...

class TaskFailure(_message.Message):
    __slots__ = ("round_number", "task_name", "reason", "model_mismatch")
    ROUND_NUMBER_FIELD_NUMBER: _ClassVar[int]
    TASK_NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MODEL_MISMATCH_FIELD_NUMBER: _ClassVar[int]
    round_number: int
    task_name: str
    reason: str
    model_mismatch: bool
    def __init__(self, round_number: _Optional[int] = ..., task_name: _Optional[str] = ..., reason: _Optional[str] = ..., model_mismatch: _Optional[bool] = ...) -> None: ...

class TaskFailureResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
