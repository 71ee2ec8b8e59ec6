"""`FedJob`: a federated job built in Python by sending objects to the server and to the clients,
then exported as an `fx` workspace or run on the simulator.

    job = FedJob(name="cifar10_fedavg")
    job.to_server(FedAvg(num_clients=2, num_rounds=2))
    job.to_server(PTModel(Net()))
    job.to_clients(ScriptRunner(script="src/cifar10_fl.py"))
    job.simulator_run("/tmp/workdir", n_clients=2)

How `to` handles an object: one with `add_to_fed_job(job, ctx, **kwargs)` decides for itself through
the object developer API below; a `Controller` (server) is the workflow; an `Executor` (client) runs
the given tasks; a `str` is a resource (a file, or a folder copied flat) shipped in `src/`; a
`Filter` (client) needs `filter_type`; anything else is a component with an id (given with `id=`, or
its type's snake_case name, incremented when taken). `to` adds all or nothing: a refused object
leaves the job as it was.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openfl_cli.errors import UsageError
from openfl_cli.job.apps import ALL_SITES, SERVER, App, Exported, FilterEntry, Handler
from openfl_cli.job.arguments import constructor_settings, takes_argument
from openfl_cli.job.classpath import class_path
from openfl_cli.job.controllers import Controller
from openfl_cli.job.executors import Executor, ScriptRunner
from openfl_cli.job.filters import Filter, FilterType
from openfl_cli.job.ids import IdSpace, References, default_id
from openfl_cli.utils.names import check_collaborator_name

if TYPE_CHECKING:
    import numpy as np

    from openfl_cli.node.simulator import SimulationResult

TASKS = ("train",)  # the one task the core's clients run for a FedJob
_JOB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


@dataclass(frozen=True)
class JobCtx:
    """Where an object is being sent; pass it on to the `add_*` methods."""

    target: str
    obj: Any


class FedJob:
    """A federated job; see the module's docstring.

    `min_clients`: the fewest clients the job runs with (meta.json; a round with a straggler cutoff
    never closes with fewer results). `mandatory_clients`: sites the job cannot run without
    (meta.json; each must be a client of the job, and a round never closes without them).
    `requirements`: pip requirement lines written to the workspace's requirements.txt.
    """

    def __init__(
        self, name: str = "fed_job", min_clients: int = 1, mandatory_clients: Sequence[str] | None = None
    ) -> None:
        if not isinstance(name, str) or not _JOB_NAME.fullmatch(name):
            raise UsageError(
                f"invalid job name {name!r}: expected up to 128 letters, digits, '-', '_' or '.', starting"
                " with a letter or digit (it names the exported folder)"
            )
        if isinstance(min_clients, bool) or not isinstance(min_clients, int) or min_clients < 1:
            raise UsageError(f"FedJob: min_clients must be an integer >= 1, got {min_clients!r}")
        if isinstance(mandatory_clients, str):
            raise UsageError(
                f"FedJob: mandatory_clients must be a list of site names, got {mandatory_clients!r}"
            )
        mandatory = list(mandatory_clients or [])
        for site in mandatory:
            check_collaborator_name(site)
        self.name = name
        self.min_clients = min_clients
        self.mandatory_clients = list(dict.fromkeys(mandatory))
        self.requirements: list[str] = []
        self.n_clients: int | None = None  # site-1..N, when no n_clients is given at export
        self._apps: dict[str, App] = {}
        self._ids = {SERVER: IdSpace(), ALL_SITES: IdSpace()}  # the clients share one namespace
        self._references = References()
        self._set_up: set[str] = set()

    # --- the user's API -------------------------------------------------------------------------
    def to(self, obj: Any, target: str, **kwargs: Any) -> Any:
        """Send `obj` to `target` ("server" or a site name); returns what was added (usually an id)."""
        target = self._check_target(target)
        saved = self._checkpoint()
        try:
            if target != SERVER and target not in self._set_up:
                self._set_up.add(target)
                self.set_up_client(target)
            return self._add(obj, JobCtx(target, obj), kwargs)
        except BaseException:
            self._restore(saved)
            raise

    def to_server(self, obj: Any, **kwargs: Any) -> Any:
        return self.to(obj, SERVER, **kwargs)

    def to_clients(self, obj: Any, **kwargs: Any) -> Any:
        """Send `obj` to every client of the job: the sites named with `to`, and `site-1..site-N` when
        the job is exported or simulated with `n_clients`."""
        return self.to(obj, ALL_SITES, **kwargs)

    def set_up_client(self, target: str) -> None:
        """Called when an object is first sent to the client `target` (`@ALL` for `to_clients`); job
        patterns override it to send their own objects to each client."""

    def as_id(self, obj: Any) -> str:
        """An id standing for `obj`: an object whose arguments hold it gets `obj` added beside it as a
        component, and the id replaced by the component's."""
        return self._references.make(obj)

    def export_job(self, job_root: str | Path, n_clients: int | None = None) -> Path:
        """Write the job as the `fx` workspace `job_root/<name>/` and return its path."""
        from openfl_cli.job.export import export_job

        return export_job(self, job_root, n_clients=n_clients)

    def simulator_run(
        self,
        workspace: str | Path,
        n_clients: int | None = None,
        threads: int | None = None,
        gpu: str | None = None,
    ) -> SimulationResult:
        """Export into `workspace` and run the job on the simulator; see `openfl_cli.job.simulate`."""
        from openfl_cli.job.simulate import simulator_run

        return simulator_run(self, workspace, n_clients=n_clients, threads=threads, gpu=gpu)

    # --- the object developer API ---------------------------------------------------------------
    def add_component(self, comp_id: str, obj: Any, ctx: JobCtx) -> str:
        """Add `obj` as a component of `ctx.target` under `comp_id` (incremented when taken); return the
        id it got. Its constructor arguments are exported; ids made by `as_id` among them add the
        objects they stand for."""
        app = self._app(ctx.target)
        held = self._component_id(app, obj)
        if held is not None:
            return held
        comp_id = self._space(ctx.target).assign(obj, comp_id)
        path = class_path(type(obj))
        entry = Exported(comp_id, obj, path.template, {}, path.shipped)
        app.components[comp_id] = entry  # before its arguments: a reference back to it resolves
        entry.settings = self._settings(obj, ctx)
        return comp_id

    def add_controller(self, obj: Controller, ctx: JobCtx) -> str:
        if not isinstance(obj, Controller):
            raise UsageError(f"{type(obj).__name__} is not a Controller")
        if ctx.target != SERVER:
            raise UsageError(
                f"{type(obj).__name__}: a controller is the server's workflow; send it to the server"
            )
        app = self._app(SERVER)
        if app.controller is obj and app.controller_id is not None:
            return app.controller_id
        if app.controller is not None:
            raise UsageError(
                f"the server already runs {type(app.controller).__name__}: the core runs one workflow per job"
            )
        app.controller = obj
        app.controller_id = self._space(SERVER).assign(obj, default_id(obj))
        return app.controller_id

    def add_executor(self, obj: Executor | ScriptRunner, tasks: Sequence[str] | None, ctx: JobCtx) -> str:
        """Make `obj` what `ctx.target` runs for `tasks` (default: all; the core's clients run `train`)."""
        name = type(obj).__name__
        if ctx.target == SERVER:
            raise UsageError(f"{name}: an executor runs on clients; send it with to_clients() or to a site")
        self._check_tasks(tasks, name)
        app = self._app(ctx.target)
        if app.handler is not None:
            if app.handler.obj is obj:
                return app.handler.comp_id
            raise UsageError(
                f"{name}: {self._where(ctx.target)} already runs {type(app.handler.obj).__name__} for its"
                " tasks (the core's clients run one task, train, with one script or executor)"
            )
        comp_id = self._space(ctx.target).assign(obj, default_id(obj))
        if isinstance(obj, ScriptRunner):
            app.handler = Handler(comp_id, obj, obj.settings())
        elif isinstance(obj, Executor):
            path = class_path(type(obj))
            app.handler = Handler(comp_id, obj, {}, path.shipped)
            settings = self._settings(obj, ctx)
            app.handler.settings = {"executor": {"template": path.template, "settings": settings}}
        else:
            raise UsageError(f"{name} is neither an Executor nor a ScriptRunner")
        return comp_id

    def add_filter(
        self, obj: Filter, filter_type: FilterType | str, tasks: Sequence[str] | None, ctx: JobCtx
    ) -> str:
        name = type(obj).__name__
        if not isinstance(obj, Filter):
            raise UsageError(f"{name} is not a Filter")
        try:
            direction = FilterType(filter_type)
        except ValueError:
            raise UsageError(
                f"{name}: filter_type must be FilterType.TASK_DATA or FilterType.TASK_RESULT,"
                f" got {filter_type!r}"
            ) from None
        if direction not in obj.allowed_types:
            raise UsageError(f"{name} cannot be a {direction.value} filter")
        if ctx.target == SERVER:
            raise UsageError(
                f"{name}: filters run on the clients here (a client's task data filter sees what the server"
                " sent); send it with to_clients() or to a site"
            )
        self._check_tasks(tasks, name)
        app = self._app(ctx.target)
        for item in app.filters:
            if item.exported.obj is obj and item.filter_type == direction.value:
                return item.exported.comp_id
        comp_id = self._space(ctx.target).assign(obj, default_id(obj))
        path = class_path(type(obj))
        exported = Exported(comp_id, obj, path.template, {}, path.shipped)
        exported.settings = self._settings(obj, ctx)
        if takes_argument(type(obj), "filter_type"):  # the direction it was sent for, whatever it holds
            exported.settings["filter_type"] = direction.value
        app.filters.append(FilterEntry(exported, direction.value))
        return comp_id

    def add_resources(self, resources: Iterable[str | os.PathLike[str]], ctx: JobCtx) -> None:
        """Ship files (as `src/<name>`) and folders (their content copied flat into `src/`) with the job;
        paths are taken from the current folder now."""
        if isinstance(resources, (str, os.PathLike)):
            resources = [resources]
        app = self._app(ctx.target)
        for resource in resources:
            if not isinstance(resource, (str, os.PathLike)) or not str(resource):
                raise UsageError(f"a resource is a file or folder path, got {resource!r}")
            path = Path(resource).expanduser().absolute()
            if not (path.is_file() or path.is_dir()):
                raise UsageError(f"resource {resource} not found (looked for {path})")
            if path not in app.resources:
                app.resources.append(path)

    def add_initial_model(self, params: Mapping[str, np.ndarray], ctx: JobCtx) -> str:
        """Make `params` the aggregator's initial model (`save/init.pbuf`); return that path."""
        import numpy as np

        if ctx.target != SERVER:
            raise UsageError(f"{type(ctx.obj).__name__}: the initial model belongs to the server")
        app = self._app(SERVER)
        if app.initial_model is not None:
            raise UsageError("the server already has an initial model")
        if not params:
            raise UsageError(f"{type(ctx.obj).__name__}: the model has no weights")
        app.initial_model = {str(name): np.asarray(value) for name, value in params.items()}
        return "save/init.pbuf"

    def check_kwargs(self, args_to_check: Mapping[str, Any], args_expected: Mapping[str, bool]) -> None:
        """Refuse keyword arguments not in `args_expected` and missing ones it marks required (True)."""
        unexpected = sorted(set(args_to_check) - set(args_expected))
        if unexpected:
            accepted = ", ".join(sorted(args_expected)) or "none"
            raise UsageError(f"unexpected argument(s) {', '.join(unexpected)}; accepted: {accepted}")
        missing = sorted(
            name for name, required in args_expected.items() if required and name not in args_to_check
        )
        if missing:
            raise UsageError(f"missing required argument(s): {', '.join(missing)}")

    # --- what the exporter reads ----------------------------------------------------------------
    @property
    def apps(self) -> Mapping[str, App]:
        return dict(self._apps)

    @property
    def controller(self) -> Controller | None:
        server = self._apps.get(SERVER)
        return server.controller if server is not None else None

    def client_sites(self, n_clients: int | None = None) -> list[str]:
        """The job's clients: `site-1..site-N` (N: `n_clients`, else the job's `n_clients`, else, when no
        site is named, the controller's `num_clients`), then the sites named with `to`."""
        named = [target for target in self._apps if target not in (SERVER, ALL_SITES)]
        count = n_clients if n_clients is not None else self.n_clients
        if count is None and not named:
            count = getattr(self.controller, "num_clients", None)
        generated = [f"site-{index}" for index in range(1, (count or 0) + 1)]
        return generated + [site for site in named if site not in generated]

    # --- inside ---------------------------------------------------------------------------------
    def _add(self, obj: Any, ctx: JobCtx, kwargs: dict[str, Any]) -> Any:
        if not isinstance(obj, type) and callable(getattr(obj, "add_to_fed_job", None)):
            return obj.add_to_fed_job(self, ctx, **kwargs)
        if isinstance(obj, Controller):
            self.check_kwargs(kwargs, {})
            return self.add_controller(obj, ctx)
        if isinstance(obj, Executor):
            self.check_kwargs(kwargs, {"tasks": False})
            return self.add_executor(obj, kwargs.get("tasks"), ctx)
        if isinstance(obj, (str, os.PathLike)):
            self.check_kwargs(kwargs, {})
            self.add_resources([obj], ctx)
            return None
        if isinstance(obj, Filter):
            if "filter_type" not in kwargs:
                raise UsageError(
                    f"{type(obj).__name__}: a filter needs filter_type=FilterType.TASK_DATA (what the script"
                    " receives) or FilterType.TASK_RESULT (what it sends back)"
                )
            self.check_kwargs(kwargs, {"filter_type": True, "tasks": False})
            return self.add_filter(obj, kwargs["filter_type"], kwargs.get("tasks"), ctx)
        self.check_kwargs(kwargs, {"id": False})
        comp_id = kwargs.get("id")
        return self.add_component(comp_id if comp_id is not None else default_id(obj), obj, ctx)

    def _check_target(self, target: str) -> str:
        if target in (SERVER, ALL_SITES):
            return target
        try:
            return check_collaborator_name(target)
        except UsageError as error:
            raise UsageError(f"target {target!r}: expected 'server' or a site name; {error}") from None

    def _app(self, target: str) -> App:
        if target not in self._apps:
            self._apps[target] = App(target)
        return self._apps[target]

    def _space(self, target: str) -> IdSpace:
        return self._ids[SERVER if target == SERVER else ALL_SITES]

    @staticmethod
    def _where(target: str) -> str:
        return "every client" if target == ALL_SITES else target

    def _component_id(self, app: App, obj: Any) -> str | None:
        """The id `obj` has among the components `app` sees (a site also sees those of all clients)."""
        scopes = [app]
        if app.target not in (SERVER, ALL_SITES) and ALL_SITES in self._apps:
            scopes.append(self._apps[ALL_SITES])
        for scope in scopes:
            for comp_id, entry in scope.components.items():
                if entry.obj is obj:
                    return comp_id
        return None

    def _settings(self, obj: Any, ctx: JobCtx) -> dict[str, Any]:
        """`obj`'s constructor arguments, with `as_id` references turned into component ids."""

        def convert(_name: str, value: Any) -> Any:
            return self._resolve_references(value, ctx)

        return constructor_settings(obj, convert)

    def _resolve_references(self, value: Any, ctx: JobCtx) -> Any:
        if isinstance(value, str):
            referenced = self._references.referenced(value)
            if referenced is None:
                return value
            app = self._app(ctx.target)
            found = self._component_id(app, referenced)
            return found if found is not None else self.add_component(default_id(referenced), referenced, ctx)
        if isinstance(value, (list, tuple)):
            return [self._resolve_references(item, ctx) for item in value]
        if isinstance(value, Mapping):
            return {key: self._resolve_references(item, ctx) for key, item in value.items()}
        return value

    @staticmethod
    def _check_tasks(tasks: Sequence[str] | None, name: str) -> None:
        if tasks is None:
            return
        if isinstance(tasks, str) or not all(isinstance(task, str) for task in tasks):
            raise UsageError(f"{name}: tasks must be a list of task names, got {tasks!r}")
        unknown = [task for task in tasks if task not in ("*", *TASKS)]
        if unknown:
            raise UsageError(
                f"{name}: unknown task(s) {', '.join(map(repr, unknown))}; a FedJob's clients run"
                f" {', '.join(map(repr, TASKS))} (or '*' for all)"
            )

    def _checkpoint(self) -> dict[str, Any]:
        apps = {}
        for target, app in self._apps.items():
            saved = copy.copy(app)
            saved.filters = list(app.filters)
            saved.components = dict(app.components)
            saved.resources = list(app.resources)
            apps[target] = saved
        return {
            "apps": apps,
            "ids": {key: space.copy() for key, space in self._ids.items()},
            "set_up": set(self._set_up),
        }

    def _restore(self, saved: dict[str, Any]) -> None:
        self._apps = saved["apps"]
        self._ids = saved["ids"]
        self._set_up = saved["set_up"]
