"""Validating the merged sections of a plan into its resolved config, typed settings and tasks.

Nothing here imports a template: classes written by users or other parts of fx are checked
against their constructors when they are built (see `Plan.check_templates`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from openfl_cli.plan import aliases, checks, kinds
from openfl_cli.plan.files import unknown_key_message
from openfl_cli.plan.schema import (
    AggregatorSettings,
    CollaboratorSettings,
    NetworkSettings,
    SettingError,
    TaskSpec,
    parse_settings,
)
from openfl_cli.plan.sources import Origins

_SECTION_KEYS = ("template", "settings", "defaults")
_TASK_KEYS = ("function", "kwargs", "aggregation_type")
_TYPED = {
    "aggregator": (AggregatorSettings, aliases.AGGREGATOR),
    "collaborator": (CollaboratorSettings, aliases.COLLABORATOR),
    "network": (NetworkSettings, aliases.NETWORK),
}
# settings the plan knows about in sections whose class is the user's; others go to the class as is
_LOADER_CHECKS = {
    "batch_size": checks.positive_int,
    "collaborator_count": checks.positive_int,
    "data_group_name": checks.text,
}


@dataclass
class Resolved:
    config: dict[str, Any]
    aggregator: AggregatorSettings
    collaborator: CollaboratorSettings
    network: NetworkSettings
    tasks: dict[str, TaskSpec]


def resolve(sections: dict[str, dict[str, Any]], origins: Origins) -> Resolved:
    for required in ("data_loader", "task_runner", "tasks"):
        if required not in sections:
            raise origins.error((required,), "missing section: the plan must define it")
    config: dict[str, Any] = {}
    typed: dict[str, Any] = {}
    for name, body in sections.items():
        if name == "tasks":
            continue
        template, settings = _template_and_settings(name, body, origins)
        if name == "aggregator":
            settings = _with_implied_best_metric(settings, sections["tasks"])
        if name in _TYPED:
            cls, expected = _TYPED[name]
            if template not in (None, expected):
                raise origins.error((name, "template"), f"expected {expected} here, got {body['template']!r}")
            try:
                typed[name] = parse_settings(cls, name, settings)
            except SettingError as error:
                raise origins.error((name, "settings", error.name), error.message) from None
            config[name] = {"template": expected, "settings": typed[name].to_dict()}
            continue
        if template is None:
            raise origins.error((name, "template"), "missing: expected a dotted class path")
        if name == "data_loader":
            _check_known(name, settings, _LOADER_CHECKS, origins)
        config[name] = {"template": template, "settings": settings}
    tasks, config["tasks"] = _tasks(sections["tasks"], origins)
    if "assigner" in config:
        _check_task_groups(config["assigner"]["settings"], tasks, origins)
    _check_best_metric_task(typed["aggregator"].best_metric_task, tasks, origins)
    return Resolved(config, typed["aggregator"], typed["collaborator"], typed["network"], tasks)


def _template_and_settings(name: str, body: dict[str, Any], origins: Origins) -> tuple[str | None, dict]:
    for key in body:
        if key not in _SECTION_KEYS:
            raise origins.error((name, str(key)), unknown_key_message(str(key), _SECTION_KEYS, "key"))
    template = body.get("template")
    if template is not None:
        template = _checked_template(template, (name,), origins)
    try:
        settings = checks.mapping(body.get("settings"))
    except ValueError as error:
        raise origins.error((name, "settings"), str(error)) from None
    return template, settings


def _checked_template(value: Any, key: tuple[str, ...], origins: Origins) -> str:
    """The class path a `template` value names (OpenFL's names mapped), refused when it is no dotted
    path, an OpenFL class fx lacks, or a standard-library name (never a plan component)."""
    try:
        template = aliases.canonical_template(checks.dotted_path(value))
    except ValueError as error:
        raise origins.error((*key, "template"), str(error)) from None
    refusal = kinds.standard_library_refusal(key, template)
    if refusal is not None:
        raise origins.error((*key, "template"), refusal)
    return template


def _check_known(
    name: str, settings: dict[str, Any], known: dict[str, checks.Check], origins: Origins
) -> None:
    for key, check in known.items():
        if key in settings:
            try:
                check(settings[key])
            except ValueError as error:
                raise origins.error((name, "settings", key), str(error)) from None


def _tasks(body: dict[str, Any], origins: Origins) -> tuple[dict[str, TaskSpec], dict[str, Any]]:
    specs: dict[str, TaskSpec] = {}
    config: dict[str, Any] = {}
    for task_name, entry in body.items():
        key = ("tasks", str(task_name))
        if task_name == "settings":
            try:
                config["settings"] = checks.mapping(entry)
            except ValueError as error:
                raise origins.error(key, str(error)) from None
            continue
        if not isinstance(entry, dict):
            raise origins.error(key, f"expected a mapping with 'function' and 'kwargs', got {entry!r}")
        for field in entry:
            if field not in _TASK_KEYS:
                raise origins.error((*key, str(field)), unknown_key_message(str(field), _TASK_KEYS, "key"))
        if "function" not in entry:
            raise origins.error(key, "missing 'function': the task runner method to call")
        try:
            function = checks.identifier(entry["function"])
        except ValueError as error:
            raise origins.error((*key, "function"), str(error)) from None
        try:
            kwargs = checks.mapping(entry.get("kwargs"))
        except ValueError as error:
            raise origins.error((*key, "kwargs"), str(error)) from None
        aggregation = _aggregation(entry.get("aggregation_type"), (*key, "aggregation_type"), origins)
        specs[str(task_name)] = TaskSpec(str(task_name), function, kwargs, aggregation)
        config[str(task_name)] = {"function": function, "kwargs": kwargs}
        if aggregation is not None:
            config[str(task_name)]["aggregation_type"] = {
                "template": aggregation[0],
                "settings": aggregation[1],
            }
    if not specs:
        raise origins.error(("tasks",), "no tasks defined")
    return specs, config


def _aggregation(value: Any, key: tuple[str, ...], origins: Origins) -> tuple[str, dict[str, Any]] | None:
    if value is None:
        return None
    if isinstance(value, str):  # a bare class path is accepted as a shorthand
        value = {"template": value}
    if not isinstance(value, dict):
        raise origins.error(key, f"expected a mapping with 'template' and 'settings', got {value!r}")
    for field in value:
        if field not in ("template", "settings"):
            raise origins.error(
                (*key, str(field)), unknown_key_message(str(field), ["template", "settings"], "key")
            )
    template = _checked_template(value.get("template"), key, origins)
    try:
        return template, checks.mapping(value.get("settings"))
    except ValueError as error:
        raise origins.error((*key, "settings"), str(error)) from None


def _with_implied_best_metric(settings: dict[str, Any], tasks: Any) -> dict[str, Any]:
    """OpenFL keeps as best the model that scores highest on the metrics its global validation task
    reports, with no setting naming one: when no file sets `best_metric` and that task lists metrics
    without fx's default, the first one it lists is the best metric (`accuracy` for OpenFL's Keras)."""
    if "best_metric" in settings or not isinstance(tasks, dict):
        return settings
    task = tasks.get(settings.get("best_metric_task", AggregatorSettings.best_metric_task))
    kwargs = task.get("kwargs") if isinstance(task, dict) else None
    metrics = kwargs.get("metrics") if isinstance(kwargs, dict) else None
    if not isinstance(metrics, list) or not metrics or AggregatorSettings.best_metric in metrics:
        return settings
    first = metrics[0]
    return {**settings, "best_metric": first} if isinstance(first, str) else settings


def _check_best_metric_task(name: str, tasks: dict[str, TaskSpec], origins: Origins) -> None:
    """The plan's own `best_metric_task` must be one of its tasks (else no best model is ever chosen:
    a typo found only after training). The defaults' choice is left alone: a plan without that task
    simply keeps no best model."""
    key = ("aggregator", "settings", "best_metric_task")
    if name in tasks or origins.file_for(key) != origins.default:
        return
    raise origins.error(key, f"{name!r}: {unknown_key_message(name, tasks, 'task')}")


def _check_task_groups(settings: dict[str, Any], tasks: dict[str, TaskSpec], origins: Origins) -> None:
    """The assigner's class checks the rest; here: every task a group names is defined in `tasks`."""
    groups = settings.get("task_groups")
    if groups is None:
        return
    base = ("assigner", "settings", "task_groups")
    if not isinstance(groups, list) or not groups:
        raise origins.error(base, f"expected a non-empty list of task groups, got {groups!r}")
    for index, group in enumerate(groups):
        where = (*base[:-1], f"task_groups[{index}]")
        if not isinstance(group, dict):
            raise origins.error(where, f"expected a mapping with 'name' and 'tasks', got {group!r}")
        names = group.get("tasks")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise origins.error((*where, "tasks"), f"expected a non-empty list of task names, got {names!r}")
        for task in names:
            if task not in tasks:
                hint = unknown_key_message(task, tasks, "task")
                raise origins.error((*where, "tasks"), f"{task!r}: {hint}")
