from __future__ import annotations

import pytest

from openfl_cli.federation.assigner import DEFAULT_TASKS, RandomGroupedAssigner, StaticGroupedAssigner

COLS = [f"col{i}" for i in range(10)]


def test_default_group_runs_the_three_tasks_for_everybody() -> None:
    assigner = RandomGroupedAssigner()
    assigner.bind(["b", "a"])
    assert assigner.tasks_for("a", 0) == list(DEFAULT_TASKS)
    assert assigner.collaborators_for("train", 3) == ["a", "b"]
    assert assigner.collaborators_in(1) == ["a", "b"]
    assert assigner.tasks_for("stranger", 0) == []
    assert assigner.tasks == DEFAULT_TASKS


def test_random_groups_split_by_percentage_and_are_deterministic() -> None:
    groups = [
        {"name": "trainers", "percentage": 0.7, "tasks": ["aggregated_model_validation", "train"]},
        {"name": "validators", "percentage": 0.3, "tasks": ["aggregated_model_validation"]},
    ]
    first = RandomGroupedAssigner(groups, collaborators=COLS)
    again = RandomGroupedAssigner(groups)
    again.bind(list(reversed(COLS)))  # the order of cols.yaml does not matter
    seen_trainers = set()
    for round_number in range(20):
        members = first.groups_for(round_number)
        assert len(members["trainers"]) == 7 and len(members["validators"]) == 3
        assert sorted(members["trainers"] + members["validators"]) == COLS
        assert members == again.groups_for(round_number)
        assert first.collaborators_for("aggregated_model_validation", round_number) == COLS
        seen_trainers.add(members["trainers"])
    assert len(seen_trainers) > 1  # membership changes from round to round
    other_seed = RandomGroupedAssigner(groups)
    other_seed.bind(COLS, seed=1)
    assert any(other_seed.groups_for(r) != first.groups_for(r) for r in range(5))


def test_random_group_sizes_always_add_up() -> None:
    groups = [{"name": f"g{i}", "percentage": 1 / 3, "tasks": ["train"]} for i in range(3)]
    assigner = RandomGroupedAssigner(groups)
    for count in range(0, 8):
        assigner.bind(COLS[:count])
        members = assigner.groups_for(0)
        assert sum(len(m) for m in members.values()) == count


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ([{"name": "a", "percentage": 0.5, "tasks": ["train"]}], "sum to 1"),
        ([{"name": "a", "percentage": 1.5, "tasks": ["train"]}], "'a'.*percentage"),
        ([{"name": "a", "percentage": "1", "tasks": ["train"]}], "'a'.*percentage"),
        ([{"name": "a", "percentage": 1.0, "tasks": []}], "'a'.*tasks"),
        ([{"name": "a", "percentage": 1.0, "tasks": "train"}], "'a'.*tasks"),
        ([{"name": "a", "percentage": 1.0, "tasks": ["train"], "extra": 1}], "'a'.*unknown key"),
        ([{"percentage": 1.0, "tasks": ["train"]}], "name"),
        (
            [
                {"name": "a", "percentage": 0.5, "tasks": ["t"]},
                {"name": "a", "percentage": 0.5, "tasks": ["t"]},
            ],
            "twice",
        ),
        ([], "at least one"),
        ({"name": "a"}, "list"),
    ],
)
def test_random_assigner_validation(groups, message) -> None:
    with pytest.raises(ValueError, match=message):
        RandomGroupedAssigner(groups)


def test_unbound_assigner_says_so() -> None:
    with pytest.raises(RuntimeError, match="bind"):
        RandomGroupedAssigner().tasks_for("a", 0)
    with pytest.raises(ValueError, match="more than once"):
        RandomGroupedAssigner().bind(["a", "a"])


STATIC = [
    {"name": "trainers", "collaborators": ["a", "b"], "tasks": ["train", "locally_tuned_model_validation"]},
    {"name": "checkers", "collaborators": ["c"], "tasks": ["aggregated_model_validation"]},
]


def test_static_assigner() -> None:
    assigner = StaticGroupedAssigner(STATIC)
    assigner.bind(["c", "b", "a"])
    assert assigner.tasks_for("a", 5) == ["train", "locally_tuned_model_validation"]
    assert assigner.tasks_for("c", 5) == ["aggregated_model_validation"]
    assert assigner.collaborators_for("train", 0) == ["a", "b"]
    assert assigner.collaborators_for("nothing", 0) == []
    assert assigner.collaborators_in(0) == ["a", "b", "c"]


def test_static_assigner_validation() -> None:
    with pytest.raises(ValueError, match="in no task group"):
        StaticGroupedAssigner(STATIC, collaborators=["a", "b", "c", "d"])
    with pytest.raises(ValueError, match=r"not in the collaborator list: c \(group 'checkers'\)"):
        StaticGroupedAssigner(STATIC, collaborators=["a", "b"])
    twice = [*STATIC, {"name": "again", "collaborators": ["a"], "tasks": ["train"]}]
    with pytest.raises(ValueError, match="'a' is in task groups 'trainers' and 'again'"):
        StaticGroupedAssigner(twice)
    with pytest.raises(ValueError, match=r"'x'.*collaborators"):
        StaticGroupedAssigner([{"name": "x", "collaborators": "a", "tasks": ["train"]}])
    with pytest.raises(ValueError, match="task_groups"):
        StaticGroupedAssigner()


def test_tasks_must_exist_in_the_plan_when_given() -> None:
    plan_tasks = {"train": object(), "aggregated_model_validation": object()}
    with pytest.raises(ValueError, match=r"'train_and_validate' names task.*locally_tuned_model_validation"):
        RandomGroupedAssigner(tasks=plan_tasks)
    StaticGroupedAssigner(STATIC[1:], collaborators=["c"], tasks=plan_tasks)
