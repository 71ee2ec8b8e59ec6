"""Which collaborator runs which tasks in a round.

    assigner = RandomGroupedAssigner(task_groups=[{"name": "g", "percentage": 1.0, "tasks": [...]}])
    assigner.bind(collaborators, seed=0)
    assigner.tasks_for("alice", round_number)     # ["aggregated_model_validation", "train", ...]
    assigner.collaborators_for("train", round_number)

Assignments are a pure function of (collaborators, seed, round), so a restarted aggregator assigns
exactly what it assigned before.
"""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

DEFAULT_TASKS: tuple[str, ...] = ("aggregated_model_validation", "train", "locally_tuned_model_validation")


class TaskAssigner(Protocol):
    """What the aggregator's side calls on the plan's assigner (`Assigner` is one): `bind` once with the
    collaborator list, `tasks` for the tasks to set up, `tasks_for` when each round opens."""

    @property
    def tasks(self) -> Sequence[str]:
        """Every task any collaborator may be given."""
        ...

    def bind(self, collaborators: Sequence[str]) -> None:
        """Fix the collaborator list (cols.yaml)."""
        ...

    def tasks_for(self, collaborator: str, round_number: int) -> Sequence[str]:
        """Tasks of `collaborator` in `round_number`, in the order it runs them (empty: none)."""
        ...


@dataclass(frozen=True)
class TaskGroup:
    name: str
    tasks: tuple[str, ...]
    percentage: float | None = None  # RandomGroupedAssigner
    collaborators: tuple[str, ...] | None = None  # StaticGroupedAssigner


class Assigner(ABC):
    def __init__(
        self,
        task_groups: Sequence[Mapping[str, Any]] | None,
        collaborators: Sequence[str] | None,
        tasks: Collection[str] | None = None,
    ) -> None:
        self.task_groups: tuple[TaskGroup, ...] = self._parse_groups(task_groups)
        self._validate_groups()
        if tasks is not None:
            for group in self.task_groups:
                unknown = [task for task in group.tasks if task not in tasks]
                if unknown:
                    raise ValueError(
                        f"task group {group.name!r} names task(s) not in the plan: {', '.join(unknown)}"
                    )
        self._collaborators: tuple[str, ...] | None = None
        self._seed = 0
        self._cache: tuple[int, dict[str, tuple[str, ...]]] | None = None
        if collaborators is not None:
            self.bind(collaborators)

    @property
    def collaborators(self) -> tuple[str, ...]:
        if self._collaborators is None:
            raise RuntimeError(f"{type(self).__name__} is not bound: call bind(collaborators) first")
        return self._collaborators

    @property
    def tasks(self) -> tuple[str, ...]:
        """Every task any group runs, in first-seen order."""
        return tuple(dict.fromkeys(task for group in self.task_groups for task in group.tasks))

    def bind(self, collaborators: Sequence[str], seed: int = 0) -> None:
        """Fix the collaborator list (cols.yaml) and the seed; validates them against the groups."""
        names = tuple(collaborators)
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"collaborator list names {', '.join(duplicates)} more than once")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"assigner seed must be an integer, got {seed!r}")
        self._check_collaborators(names)
        self._collaborators = tuple(sorted(names))
        self._seed = seed
        self._cache = None

    def groups_for(self, round_number: int) -> dict[str, tuple[str, ...]]:
        """Group name -> its collaborators (sorted) in `round_number`."""
        self.collaborators  # noqa: B018 - raises when not bound
        if self._cache is None or self._cache[0] != round_number:
            self._cache = (round_number, self._members(round_number))
        return dict(self._cache[1])

    def tasks_for(self, collaborator: str, round_number: int) -> list[str]:
        """Tasks of `collaborator` in `round_number`, in group order; [] if it has none (or is unknown)."""
        members = self.groups_for(round_number)
        return [
            task for group in self.task_groups if collaborator in members[group.name] for task in group.tasks
        ]

    def collaborators_for(self, task: str, round_number: int) -> list[str]:
        """Collaborators that run `task` in `round_number`, sorted."""
        members = self.groups_for(round_number)
        names = {name for group in self.task_groups if task in group.tasks for name in members[group.name]}
        return sorted(names)

    def collaborators_in(self, round_number: int) -> list[str]:
        """Collaborators with at least one task in `round_number` (the straggler policy's `expected`)."""
        return sorted({name for names in self.groups_for(round_number).values() for name in names})

    @classmethod
    def _parse_groups(cls, task_groups: Sequence[Mapping[str, Any]] | None) -> tuple[TaskGroup, ...]:
        if task_groups is None:
            task_groups = [cls._default_group()]
        if isinstance(task_groups, (str, bytes, Mapping)) or not isinstance(task_groups, Sequence):
            raise ValueError(f"task_groups must be a list of groups, got {task_groups!r}")
        if not task_groups:
            raise ValueError("task_groups must name at least one group")
        groups: list[TaskGroup] = []
        for index, raw in enumerate(task_groups):
            if not isinstance(raw, Mapping):
                raise ValueError(f"task_groups[{index}] must be a mapping, got {raw!r}")
            name = raw.get("name")
            if not isinstance(name, str) or not name:
                raise ValueError(f"task_groups[{index}]: 'name' must be a non-empty string")
            if any(group.name == name for group in groups):
                raise ValueError(f"task group {name!r} is defined twice")
            groups.append(cls._parse_group(name, raw))
        return tuple(groups)

    @staticmethod
    def _tasks_of(name: str, raw: Mapping[str, Any]) -> tuple[str, ...]:
        tasks = raw.get("tasks")
        if isinstance(tasks, str) or not isinstance(tasks, Sequence) or not tasks:
            raise ValueError(f"task group {name!r}: 'tasks' must be a non-empty list of task names")
        if not all(isinstance(task, str) and task for task in tasks):
            raise ValueError(f"task group {name!r}: 'tasks' must hold task names, got {list(tasks)!r}")
        if len(set(tasks)) != len(tasks):
            raise ValueError(f"task group {name!r}: 'tasks' names a task twice")
        return tuple(tasks)

    @staticmethod
    def _check_keys(name: str, raw: Mapping[str, Any], allowed: set[str]) -> None:
        unknown = sorted(set(raw) - allowed)
        if unknown:
            raise ValueError(f"task group {name!r}: unknown key(s) {', '.join(map(str, unknown))}")

    @classmethod
    @abstractmethod
    def _default_group(cls) -> dict[str, Any]: ...

    @classmethod
    @abstractmethod
    def _parse_group(cls, name: str, raw: Mapping[str, Any]) -> TaskGroup: ...

    @abstractmethod
    def _validate_groups(self) -> None:
        """Checks across groups (raised at construction)."""

    @abstractmethod
    def _check_collaborators(self, names: tuple[str, ...]) -> None: ...

    @abstractmethod
    def _members(self, round_number: int) -> dict[str, tuple[str, ...]]: ...


class RandomGroupedAssigner(Assigner):
    """Each round, shuffles the collaborators (seeded by (seed, round)) and splits them among the
    groups by percentage; the percentages must sum to 1."""

    def __init__(
        self,
        task_groups: Sequence[Mapping[str, Any]] | None = None,
        collaborators: Sequence[str] | None = None,
        tasks: Collection[str] | None = None,
    ) -> None:
        super().__init__(task_groups, collaborators, tasks)

    def _validate_groups(self) -> None:
        total = math.fsum(group.percentage or 0.0 for group in self.task_groups)
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            listing = ", ".join(f"{group.name}={group.percentage}" for group in self.task_groups)
            raise ValueError(f"task group percentages must sum to 1, got {total:g} ({listing})")

    @classmethod
    def _default_group(cls) -> dict[str, Any]:
        return {"name": "train_and_validate", "percentage": 1.0, "tasks": list(DEFAULT_TASKS)}

    @classmethod
    def _parse_group(cls, name: str, raw: Mapping[str, Any]) -> TaskGroup:
        cls._check_keys(name, raw, {"name", "percentage", "tasks"})
        percentage = raw.get("percentage")
        if isinstance(percentage, bool) or not isinstance(percentage, (int, float)):
            raise ValueError(
                f"task group {name!r}: 'percentage' must be a number in [0, 1], got {percentage!r}"
            )
        if not 0.0 <= percentage <= 1.0:
            raise ValueError(f"task group {name!r}: 'percentage' must be in [0, 1], got {percentage!r}")
        return TaskGroup(name=name, tasks=cls._tasks_of(name, raw), percentage=float(percentage))

    def _check_collaborators(self, names: tuple[str, ...]) -> None:
        return None

    def _members(self, round_number: int) -> dict[str, tuple[str, ...]]:
        shuffled = list(self.collaborators)
        # A str seed is hashed with SHA-512 by `random`: stable across processes and Python versions.
        random.Random(f"fx-assigner/{self._seed}/{round_number}").shuffle(shuffled)
        count = len(shuffled)
        members: dict[str, tuple[str, ...]] = {}
        cumulative = 0.0
        start = 0
        for group in self.task_groups:
            cumulative += group.percentage or 0.0
            # Cumulative rounding: sizes follow the percentages and always add up to `count`.
            end = count if group is self.task_groups[-1] else min(count, round(cumulative * count))
            members[group.name] = tuple(sorted(shuffled[start:end]))
            start = end
        return members


class StaticGroupedAssigner(Assigner):
    """Fixed groups: every collaborator is listed in exactly one group."""

    def __init__(
        self,
        task_groups: Sequence[Mapping[str, Any]] | None = None,
        collaborators: Sequence[str] | None = None,
        tasks: Collection[str] | None = None,
    ) -> None:
        super().__init__(task_groups, collaborators, tasks)

    def _validate_groups(self) -> None:
        seen: dict[str, str] = {}
        for group in self.task_groups:
            for name in group.collaborators or ():
                if name in seen:
                    raise ValueError(
                        f"collaborator {name!r} is in task groups {seen[name]!r} and {group.name!r}"
                    )
                seen[name] = group.name

    @classmethod
    def _default_group(cls) -> dict[str, Any]:
        raise ValueError("StaticGroupedAssigner needs task_groups that list their collaborators")

    @classmethod
    def _parse_group(cls, name: str, raw: Mapping[str, Any]) -> TaskGroup:
        cls._check_keys(name, raw, {"name", "collaborators", "tasks"})
        members = raw.get("collaborators")
        if isinstance(members, str) or not isinstance(members, Sequence):
            raise ValueError(f"task group {name!r}: 'collaborators' must be a list of collaborator names")
        if not all(isinstance(member, str) and member for member in members):
            raise ValueError(f"task group {name!r}: 'collaborators' must hold names, got {list(members)!r}")
        if len(set(members)) != len(members):
            raise ValueError(f"task group {name!r}: 'collaborators' names a collaborator twice")
        return TaskGroup(name=name, tasks=cls._tasks_of(name, raw), collaborators=tuple(members))

    def _check_collaborators(self, names: tuple[str, ...]) -> None:
        listed = {member: group.name for group in self.task_groups for member in group.collaborators or ()}
        missing = sorted(set(names) - set(listed))
        if missing:
            raise ValueError(f"collaborator(s) {', '.join(missing)} are in no task group")
        unknown = sorted(set(listed) - set(names))
        if unknown:
            where = ", ".join(f"{name} (group {listed[name]!r})" for name in unknown)
            raise ValueError(f"task groups name collaborator(s) not in the collaborator list: {where}")

    def _members(self, round_number: int) -> dict[str, tuple[str, ...]]:
        return {group.name: tuple(sorted(group.collaborators or ())) for group in self.task_groups}
