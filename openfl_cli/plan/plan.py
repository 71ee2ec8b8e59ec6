"""The federated learning plan: loaded, validated and hashed once; builds the objects it names."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openfl_cli.errors import PlanError
from openfl_cli.plan import aliases
from openfl_cli.plan.kinds import kind_of
from openfl_cli.plan.participants import read_collaborators, read_data_paths
from openfl_cli.plan.schema import AggregatorSettings, CollaboratorSettings, NetworkSettings, TaskSpec
from openfl_cli.plan.sections import resolve
from openfl_cli.plan.sources import Origins, load_sections
from openfl_cli.plan.templates import TemplateError, accepted_injections, check_call, import_object

if TYPE_CHECKING:
    from openfl_cli.data.base import DataLoader
    from openfl_cli.federation.aggregation.function import AggregationFunction
    from openfl_cli.federation.assigner import TaskAssigner
    from openfl_cli.federation.specs import ComponentSpec, ExperimentSpec
    from openfl_cli.federation.straggler import StragglerHandling
    from openfl_cli.runners.base import TaskRunner
    from openfl_cli.tensors.pipelines import TensorEncoder


def canonical_hash(config: Mapping[str, Any]) -> str:
    """sha384 over sorted-key compact JSON: key order and YAML comments never change it."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha384(text.encode("utf-8")).hexdigest()


@dataclass
class Plan:
    workspace: Path
    plan_path: Path
    config: dict[str, Any]
    hash: str
    collaborators: list[str]
    data_paths: dict[str, str]
    aggregator_settings: AggregatorSettings
    collaborator_settings: CollaboratorSettings
    network_settings: NetworkSettings
    tasks: dict[str, TaskSpec]
    origins: Origins
    data_file: str = "plan/data.yaml"

    @classmethod
    def load(
        cls,
        plan_path: str | Path = "plan/plan.yaml",
        cols_path: str | Path | None = "plan/cols.yaml",
        data_path: str | Path | None = "plan/data.yaml",
    ) -> Plan:
        """Load and validate a plan. Relative cols/data paths are taken as given (from the current folder).

        Raises PlanError naming the file and dotted key of the first problem.
        """
        plan_file = Path(plan_path)
        if not plan_file.is_file():
            what = "is not a file" if plan_file.exists() else "not found"
            raise PlanError(str(plan_path), None, f"plan file {what}")
        workspace_display = plan_file.parent.parent
        workspace = workspace_display.resolve()
        sections, origins = load_sections(plan_file, str(plan_path), workspace, workspace_display)
        resolved = resolve(sections, origins)
        collaborators = read_collaborators(Path(cols_path), str(cols_path)) if cols_path else []
        data_paths = read_data_paths(Path(data_path), str(data_path)) if data_path else {}
        return cls(
            workspace=workspace,
            plan_path=plan_file.resolve(),
            config=resolved.config,
            hash=canonical_hash(resolved.config),
            collaborators=collaborators,
            data_paths=data_paths,
            aggregator_settings=resolved.aggregator,
            collaborator_settings=resolved.collaborator,
            network_settings=resolved.network,
            tasks=resolved.tasks,
            origins=origins,
            data_file=str(data_path),
        )

    def resolve_path(self, path: str | Path) -> Path:
        """Paths in settings are relative to the workspace."""
        given = Path(path)
        return given if given.is_absolute() else self.workspace / given

    # --- building what the plan names -----------------------------------------------------------
    def _prepare(
        self,
        key: tuple[str, ...],
        template: str,
        settings: Mapping[str, Any],
        injected: Mapping[str, Any],
        optional_injected: Mapping[str, Any],
    ) -> tuple[Any, dict[str, Any]]:
        """Import `template`, check it builds this section's kind and that `settings` bind to it;
        return (class, optional args it takes). Nothing of the template is called here."""
        try:
            target = import_object(template, self.workspace)
            kind = kind_of(key)
            if kind is not None and not kind.admits(target):
                raise TemplateError(kind.refusal(template, target))
            extras = accepted_injections(target, optional_injected)
            check_call(target, template, settings, [*injected, *extras])
        except TemplateError as error:
            where = (*key, "settings", error.key) if error.key else (*key, "template")
            raise self.origins.error(where, str(error)) from None
        return target, extras

    def _build(
        self,
        key: tuple[str, ...],
        template: str,
        settings: Mapping[str, Any],
        injected: Mapping[str, Any] | None = None,
        optional_injected: Mapping[str, Any] | None = None,
    ) -> Any:
        """Import, check and call `template`; errors in the settings become PlanErrors naming the key."""
        injected = dict(injected or {})
        target, extras = self._prepare(key, template, settings, injected, optional_injected or {})
        try:
            return target(**injected, **extras, **settings)
        except (TypeError, ValueError) as error:
            raise self.origins.error((*key, "settings"), f"{template}: {error}") from None

    def _section(self, name: str) -> tuple[str, dict[str, Any]]:
        body = self.config[name]
        return body["template"], dict(body["settings"])

    # --- specs: what the participants are built from (the plan is their ComponentBuilder) --------
    def experiment(self) -> ExperimentSpec:
        """The plan as typed specs (see `openfl_cli.federation.specs`)."""
        from openfl_cli.plan.specs import experiment_spec

        return experiment_spec(self)

    def component(self, section: str) -> ComponentSpec:
        """A section of the plan (`data_loader`, `assigner`, ...) as a component spec."""
        from openfl_cli.federation.specs import ComponentSpec  # loading a plan stays light

        if section == "straggler_handling_policy" and section not in self.config:
            return ComponentSpec((section,), aliases.WAIT_FOR_ALL, {})
        return ComponentSpec((section,), *self._section(section))

    def build(
        self,
        component: ComponentSpec,
        injected: Mapping[str, Any] | None = None,
        optional_injected: Mapping[str, Any] | None = None,
    ) -> Any:
        return self._build(component.key, component.template, component.settings, injected, optional_injected)

    def import_callable(self, dotted: str, key: tuple[str, ...]) -> Callable[..., Any]:
        """A function named in the plan (`src.` modules come from the workspace)."""
        where = ".".join(key)
        try:
            found = import_object(dotted, self.workspace)
        except TemplateError as error:
            raise PlanError(str(self.plan_path), where, str(error)) from None
        if not callable(found):
            raise PlanError(str(self.plan_path), where, f"{dotted} is not callable")
        return found

    def data_path_for(self, collaborator_name: str) -> str:
        try:
            return self.data_paths[collaborator_name]
        except KeyError:
            raise PlanError(
                self.data_file, collaborator_name, "no data path for this collaborator in the data file"
            ) from None

    def build_data_loader(self, collaborator_name: str, data_path: str | None = None) -> DataLoader:
        """The collaborator's data loader, `data_path` overriding the one in data.yaml."""
        path = data_path if data_path is not None else self.data_path_for(collaborator_name)
        template, settings = self._section("data_loader")
        return self._build(("data_loader",), template, settings, {"data_path": path})

    def build_task_runner(self, data_loader: DataLoader | None) -> TaskRunner:
        template, settings = self._section("task_runner")
        return self._build(("task_runner",), template, settings, {"data_loader": data_loader})

    def build_compression_pipeline(self) -> TensorEncoder:
        template, settings = self._section("compression_pipeline")
        return self._build(("compression_pipeline",), template, settings)

    def _assigner_extras(self) -> dict[str, Any]:
        # what an assigner may need besides its settings; given only when its constructor names it
        return {
            "tasks": self.tasks,
            "authorized_cols": list(self.collaborators),
            "collaborators": list(self.collaborators),
            "rounds_to_train": self.aggregator_settings.rounds_to_train,
        }

    def build_assigner(self) -> TaskAssigner:
        template, settings = self._section("assigner")
        return self._build(("assigner",), template, settings, optional_injected=self._assigner_extras())

    def build_straggler_policy(self) -> StragglerHandling:
        if "straggler_handling_policy" not in self.config:
            return self._build(("straggler_handling_policy",), aliases.WAIT_FOR_ALL, {})
        template, settings = self._section("straggler_handling_policy")
        return self._build(("straggler_handling_policy",), template, settings)

    def build_aggregation_function(self, task_name: str) -> AggregationFunction:
        try:
            spec = self.tasks[task_name]
        except KeyError:
            raise PlanError(self.origins.default, f"tasks.{task_name}", "no such task in the plan") from None
        template, settings = spec.aggregation or (aliases.WEIGHTED_AVERAGE, {})
        return self._build(("tasks", task_name, "aggregation_type"), template, settings)

    def check_templates(self) -> None:
        """Import every template and check its settings, building nothing (for `fx plan validate`)."""
        placeholder = {"data_path": None}
        self._prepare(("data_loader",), *self._section("data_loader"), placeholder, {})
        self._prepare(("task_runner",), *self._section("task_runner"), {"data_loader": None}, {})
        self._prepare(("assigner",), *self._section("assigner"), {}, self._assigner_extras())
        for name in ("compression_pipeline", "straggler_handling_policy"):
            if name in self.config:
                self._prepare((name,), *self._section(name), {}, {})
        for spec in self.tasks.values():
            if spec.aggregation:
                self._prepare(("tasks", spec.name, "aggregation_type"), *spec.aggregation, {}, {})
