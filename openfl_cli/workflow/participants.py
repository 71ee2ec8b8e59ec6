"""The participants of a flow: one aggregator and the collaborators, with what only they may see."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from openfl_cli.errors import UsageError


class Participant:
    """`private_attributes`: a dict of what only this participant's steps see (its data loaders, ...);
    or `private_attributes_callable(**kwargs)` returning that dict, called once when the runtime sets the
    participant up (the callable wins when both are given). `num_cpus`/`num_gpus`: what a Ray backend
    reserves for this participant's actor."""

    def __init__(
        self,
        name: str,
        private_attributes_callable: Callable[..., Mapping[str, Any]] | None = None,
        num_cpus: float = 0.0,
        num_gpus: float = 0.0,
        **kwargs: Any,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise UsageError(f"a participant needs a non-empty name, got {name!r}")
        if private_attributes_callable is not None and not callable(private_attributes_callable):
            raise UsageError(f"{name}: private_attributes_callable must be callable")
        if kwargs and private_attributes_callable is None:
            raise UsageError(
                f"{name}: {', '.join(sorted(kwargs))}: keyword arguments go to private_attributes_callable,"
                " and there is none (a dict of private attributes is set as .private_attributes)"
            )
        if num_cpus < 0 or num_gpus < 0:
            raise UsageError(f"{name}: num_cpus and num_gpus must be >= 0")
        self.name = name
        self.private_attributes: dict[str, Any] = {}
        self.private_attributes_callable = private_attributes_callable
        self.kwargs = kwargs
        self.num_cpus = float(num_cpus)
        self.num_gpus = float(num_gpus)

    def initialize_private_attributes(self) -> dict[str, Any]:
        """The private attributes, from the callable when there is one (called here, once)."""
        if self.private_attributes_callable is not None:
            found = self.private_attributes_callable(**self.kwargs)
            if not isinstance(found, Mapping):
                raise UsageError(
                    f"{self.name}: private_attributes_callable returned {type(found).__name__},"
                    " expected a dict"
                )
            self.private_attributes = dict(found)
        elif not isinstance(self.private_attributes, Mapping):
            raise UsageError(f"{self.name}: private_attributes must be a dict")
        for key in self.private_attributes:
            if not isinstance(key, str) or not key.isidentifier():
                raise UsageError(f"{self.name}: private attribute names must be identifiers, got {key!r}")
        return dict(self.private_attributes)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class Aggregator(Participant):
    def __init__(self, name: str = "aggregator", **kwargs: Any) -> None:
        super().__init__(name, **kwargs)


class Collaborator(Participant):
    pass
