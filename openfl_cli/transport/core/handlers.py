"""Method handlers that cannot skip the guard: a method receives the sender the guard admitted.

Every failure becomes a status the client can act on: a refusal (`Refused`, `Denied`) carries its code
in the `fx-refusal` trailer, invalid input (`StreamError`) is an INVALID refusal, and anything else is
logged here and answered INTERNAL without details.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError, Message

from openfl_cli.transport.core.budget import CallBudget
from openfl_cli.transport.core.guard import CallGuard, Denied
from openfl_cli.transport.frames import Malformed
from openfl_cli.transport.messages import RefusalCode, Refused, StreamError
from openfl_cli.transport.status import abort

log = logging.getLogger(__name__)
R = TypeVar("R")

# (sender, request or request iterator, context) -> response or response iterator
Method = Callable[[str, Any, grpc.ServicerContext], Any]


@dataclass(frozen=True)
class Rpc:
    """One method of a service. A streaming response is an iterator; the work up to its first item
    (checks, refusals) still runs under the guard's error handling."""

    method: Method
    request_deserializer: Callable[[bytes], Any]
    response_serializer: Callable[[Any], bytes]
    request_streaming: bool = False
    response_streaming: bool = False


def guarded_handler(
    service_name: str,
    rpcs: Mapping[str, Rpc],
    guard: CallGuard,
    *,
    role: str,
    budget: CallBudget | None = None,
) -> grpc.GenericRpcHandler:
    """The handler of `service_name`: each call is admitted by `guard`, counted against the sender's
    `budget` (if any) until it ends, then runs its method. `role` names the server in the INTERNAL
    answer ("internal error on the aggregator")."""
    handlers = {name: _handler(rpc, guard, role, budget) for name, rpc in rpcs.items()}
    return grpc.method_handlers_generic_handler(service_name, handlers)


def answer(
    guard: CallGuard,
    context: grpc.ServicerContext,
    run: Callable[[str], R],
    role: str,
    budget: CallBudget | None = None,
) -> R:
    """Admit the caller, run, and turn every failure into a status the client can print."""
    try:
        sender = guard.admit(context)
        if budget is not None:
            release = budget.take(sender)
            # at the call's end, however it ends (a stream the client cancels included)
            if not context.add_callback(release):
                release()
        return run(sender)
    except Denied as denied:
        log.warning("refused %s: %s", context.peer(), denied.refusal)
        refusal, status = denied.refusal, denied.status
    except Refused as refused:
        refusal, status = refused, None
    except StreamError as exc:
        log.warning("invalid input from %s: %s", context.peer(), exc)
        refusal, status = Refused(RefusalCode.INVALID, str(exc)), None
    except grpc.RpcError:
        raise  # the client went away mid-stream: nothing to answer
    except Exception:
        log.exception("internal error while serving %s", context.peer())
        context.abort(grpc.StatusCode.INTERNAL, f"internal error on the {role} (see its log)")
    abort(context, refusal, status)
    raise AssertionError("unreachable: abort raises")


def _handler(rpc: Rpc, guard: CallGuard, role: str, budget: CallBudget | None) -> grpc.RpcMethodHandler:
    if rpc.response_streaming:

        def streaming(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            yield from answer(
                guard, context, lambda sender: _primed(rpc.method(sender, request, context)), role, budget
            )

        behaviour: Callable[[Any, grpc.ServicerContext], Any] = streaming
    else:

        def unary(request: Any, context: grpc.ServicerContext) -> Any:
            return answer(
                guard, context, lambda sender: rpc.method(sender, request, context), role, budget
            )

        behaviour = unary
    factory = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }[(rpc.request_streaming, rpc.response_streaming)]
    return factory(behaviour, rpc.request_deserializer, rpc.response_serializer)


def _primed(items: Iterator[Any]) -> Iterator[Any]:
    """`items` with its first item already taken, so that a generator's checks run under `answer`."""
    iterator = iter(items)
    first = next(iterator, _END)
    return iterator if first is _END else itertools.chain((first,), iterator)


_END = object()


M = TypeVar("M", bound=Message)


def parse_as(message_type: type[M]) -> Callable[[bytes], M | Malformed]:
    """A request deserializer that never raises: gRPC would hide the reason behind a generic error."""

    def parse(raw: bytes) -> M | Malformed:
        try:
            return message_type.FromString(raw)
        except DecodeError as exc:
            return Malformed(f"malformed {message_type.__name__}: {exc}")

    return parse


def request_of(message: M | Malformed) -> M:
    """The parsed request, or the INVALID refusal its malformation deserves."""
    if isinstance(message, Malformed):
        raise StreamError(message.reason)
    return message


def raw_bytes(raw: bytes) -> bytes:
    """The (de)serializer of messages framed by hand (`transport/frames.py`)."""
    return raw
