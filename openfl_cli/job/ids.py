"""Component ids: derived from the type's name, incremented on collision, and references made with
`job.as_id(obj)`.

An id made by `as_id` (`as_id:<uuid>`) stands for the object until the object is added: when an object
that refers to it is added, the referenced object is added beside it as a component and the id is
replaced by the component's. Such an id that this job did not make (another job's, say) is an error:
it would name a component that exists nowhere. Plain strings are left alone, whatever they look like.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from openfl_cli.errors import UsageError

_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
REFERENCE_PREFIX = "as_id:"
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def snake_case(name: str) -> str:
    """`IntimeModelSelector` -> `intime_model_selector`, `HTTPClient` -> `http_client`."""
    return _CAMEL.sub("_", name).lower()


def default_id(obj: Any) -> str:
    return snake_case(type(obj).__name__)


def check_id(comp_id: str) -> str:
    if not isinstance(comp_id, str) or not _ID.fullmatch(comp_id):
        raise UsageError(
            f"invalid component id {comp_id!r}: expected a letter or '_', then letters, digits,"
            " '_', '.' or '-'"
        )
    return comp_id


class IdSpace:
    """The ids of one namespace (the server's, or the clients' together): an object keeps its id, a new
    object asking for a taken id gets the next free one (`component`, `component1`, `component2`)."""

    def __init__(self) -> None:
        self._objects: dict[str, Any] = {}

    def copy(self) -> IdSpace:
        other = IdSpace()
        other._objects = dict(self._objects)
        return other

    def id_of(self, obj: Any) -> str | None:
        return next((key for key, held in self._objects.items() if held is obj), None)

    def assign(self, obj: Any, wanted: str) -> str:
        existing = self.id_of(obj)
        if existing is not None:
            return existing
        check_id(wanted)
        comp_id, number = wanted, 0
        while comp_id in self._objects:
            number += 1
            comp_id = f"{wanted}{number}"
        self._objects[comp_id] = obj
        return comp_id


class References:
    """The ids handed out by `as_id`, and the objects they stand for."""

    def __init__(self) -> None:
        self._objects: dict[str, Any] = {}

    def make(self, obj: Any) -> str:
        for token, held in self._objects.items():
            if held is obj:
                return token
        token = f"{REFERENCE_PREFIX}{uuid.uuid4()}"
        self._objects[token] = obj
        return token

    def referenced(self, value: str) -> Any | None:
        """The object `value` stands for; None when it is not a reference. UsageError for an `as_id` id
        that this job did not make."""
        if not value.startswith(REFERENCE_PREFIX):
            return None
        if value not in self._objects:
            raise UsageError(
                f"{value!r} is a component id made by as_id(), but not by this job's: it refers to no"
                " object of this job"
            )
        return self._objects[value]
