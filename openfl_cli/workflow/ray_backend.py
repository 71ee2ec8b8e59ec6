"""`RayBackend`: each collaborator in a Ray actor of its own, the chains of one `foreach` in parallel.

Ray is imported here only, when a `LocalRuntime(backend='ray')` runs a flow. A collaborator's actor
builds that collaborator's private attributes itself and keeps them: they never cross the object
store. The aggregator's steps run in the driver; its `num_cpus` / `num_gpus` are reserved all the same
(by an idle actor), so collaborators cannot take them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

from openfl_cli.errors import UsageError
from openfl_cli.workflow.capture import StepOutput
from openfl_cli.workflow.engine import ChainResult, run_collaborator_chain
from openfl_cli.workflow.flspec import FLSpec
from openfl_cli.workflow.participants import Aggregator, Collaborator, Participant
from openfl_cli.workflow.snapshot import SnapshotSink, TaskSnapshot

log = logging.getLogger(__name__)
_EPSILON = 1e-9


class RuntimeView:
    """What a collaborator step sees as `self.runtime` on Ray: the collaborators' names (the
    `LocalRuntime` itself holds the backend and stays in the driver)."""

    def __init__(self, collaborators: Sequence[str], backend: str = "ray") -> None:
        self.collaborators = list(collaborators)
        self.backend = backend

    def __repr__(self) -> str:
        return f"RuntimeView(backend={self.backend!r}, collaborators={self.collaborators})"


class _CollaboratorActor:
    """The body of a collaborator's Ray actor (made remote in `RayBackend.setup`)."""

    def __init__(self, collaborator: Collaborator) -> None:
        self.name = collaborator.name
        self.private = collaborator.initialize_private_attributes()
        self.sent: dict[str, int] = {}  # content keys of the snapshots' blobs sent to the driver

    def ready(self) -> str:
        return self.name

    def run_chain(
        self, flow_class: type[FLSpec], step: str, state: dict[str, Any], runtime: Any, snapshots: bool
    ) -> ChainResult:
        kept: list[TaskSnapshot] = []

        def keep(snapshot: TaskSnapshot) -> None:  # pickled here, where the copy is: only new blobs travel
            snapshot.encode(self.sent)
            kept.append(snapshot)

        try:
            result = run_collaborator_chain(
                flow_class,
                step,
                state,
                self.name,
                self.private,
                runtime,
                live=False,
                snapshots=keep if snapshots else None,
            )
        except BaseException as error:
            error.fx_snapshots = kept  # type: ignore[attr-defined]  # travels back with the error
            raise
        result.snapshots = kept
        return result


class _Reservation:
    """An idle actor holding the aggregator's share of the cluster."""

    def ready(self) -> bool:
        return True


def _amount(value: float) -> str:
    return f"{value:g}"


def _check_resources(
    participants: Sequence[Participant], total: dict[str, float], nodes: list[dict[str, float]]
) -> None:
    """Refuse, before anything starts, a request the cluster cannot hold."""
    for key, unit in (("GPU", "GPU"), ("CPU", "CPU")):
        attribute = "num_gpus" if key == "GPU" else "num_cpus"
        asks = [(p.name, float(getattr(p, attribute))) for p in participants]
        asks = [(name, value) for name, value in asks if value > 0]
        if not asks:
            continue
        have = float(total.get(key, 0.0))
        wanted = sum(value for _, value in asks)
        values = {value for _, value in asks}
        each = (
            f"{_amount(asks[0][1])} each"
            if len(values) == 1
            else ", ".join(f"{name}: {_amount(value)}" for name, value in asks)
        )
        if wanted > have + _EPSILON:
            raise UsageError(
                f"{len(asks)} participant{'s' if len(asks) != 1 else ''} ask for {_amount(wanted)} {unit}s"
                f" in all ({each}); the Ray cluster has {_amount(have)} {unit}"
            )
        biggest = max((float(node.get(key, 0.0)) for node in nodes), default=0.0)
        for name, value in asks:
            if value > biggest + _EPSILON:
                raise UsageError(
                    f"{name} asks for {_amount(value)} {unit}s; no node of the Ray cluster has that many"
                    f" (the largest has {_amount(biggest)})"
                )
        if key == "GPU":
            _check_gpu_packing(asks, nodes, each)


def _check_gpu_packing(asks: list[tuple[str, float]], nodes: list[dict[str, float]], each: str) -> None:
    """A fraction of a GPU lives on one GPU: 5 x 0.4 do not fit on 2 GPUs although 2.0 <= 2."""
    for name, value in asks:
        if value > 1 + _EPSILON and abs(value - round(value)) > _EPSILON:
            raise UsageError(f"{name} asks for {_amount(value)} GPUs: above 1, ask for a whole number")
    per_node = [round(float(node.get("GPU", 0.0))) for node in nodes]
    # whole GPUs first (largest first, on the node with the most GPUs left), then fractions first-fit
    wholes = sorted((value for _, value in asks if value >= 1 - _EPSILON), reverse=True)
    for value in wholes:
        need = round(value)
        best = max(range(len(per_node)), key=lambda i: per_node[i], default=None)
        if best is None or per_node[best] < need:
            raise UsageError(
                f"{len(asks)} participants ask for GPUs ({each}) that the Ray cluster's GPUs cannot hold"
            )
        per_node[best] -= need
    free = [1.0] * sum(per_node)
    for value in sorted((value for _, value in asks if value < 1 - _EPSILON), reverse=True):
        for i, left in enumerate(free):
            if left + _EPSILON >= value:
                free[i] = left - value
                break
        else:
            raise UsageError(
                f"{len(asks)} participants ask for GPUs ({each}): a fraction of a GPU cannot span two"
                " GPUs, and the Ray cluster's GPUs cannot hold them all"
            )


def _print_outputs(outputs: Sequence[StepOutput], stdout: TextIO, stderr: TextIO) -> None:
    """A chain's output as the live printing shows it: `[name/step] ` before each line."""
    for output in outputs:
        prefix = f"[{output.participant}/{output.step}] "
        for text, stream in ((output.stdout, stdout), (output.stderr, stderr)):
            if not text:
                continue
            lines = text.split("\n")
            if lines[-1] == "":
                lines.pop()
            stream.write("".join(f"{prefix}{line}\n" for line in lines))
            stream.flush()


def _pickle_by_value(obj: Any) -> None:
    """Ship the module that defines `obj` (a test module, a script's) by value to the workers, unless
    it is an installed one they can import themselves."""
    module_name = getattr(obj, "__module__", None)
    if (
        not module_name
        or module_name == "__main__"
        or module_name.split(".")[0] in {"openfl_cli", "builtins"}
    ):
        return
    module = sys.modules.get(module_name)
    path = getattr(module, "__file__", None) or ""
    if module is None or "site-packages" in path or "dist-packages" in path:
        return
    from ray import cloudpickle

    with contextlib.suppress(ValueError):
        cloudpickle.register_pickle_by_value(module)


class RayBackend:
    def __init__(
        self, aggregator: Aggregator | None = None, address: str | None = None, **ray_init_kwargs: Any
    ) -> None:
        self.aggregator = aggregator or Aggregator()
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.ray_init_kwargs = ray_init_kwargs
        self._actors: dict[str, Any] = {}
        self._reservation: Any = None
        self._shutdown = False  # whether close() disconnects / stops the Ray instance
        self._view: RuntimeView | None = None

    def _connect(self) -> Any:
        try:
            import ray
        except ImportError as err:
            raise UsageError("LocalRuntime(backend='ray') needs Ray: pip install 'openfl-cli[ray]'") from err
        if ray.is_initialized():
            return ray
        options: dict[str, Any] = {"logging_level": logging.ERROR}
        if self.address:
            options["address"] = self.address
        else:
            options["include_dashboard"] = False
        options.update(self.ray_init_kwargs)
        try:
            _start(ray, options, local=not self.address)
        except ConnectionError as err:
            raise UsageError(f"cannot connect to the Ray cluster at {self.address}: {err}") from err
        self._shutdown = True
        return ray

    def setup(self, collaborators: Sequence[Collaborator]) -> None:
        try:
            self._setup(collaborators)
        except BaseException:
            self.close()
            raise

    def _setup(self, collaborators: Sequence[Collaborator]) -> None:
        ray = self._connect()
        nodes = [dict(node.get("Resources", {})) for node in ray.nodes() if node.get("Alive")]
        _check_resources([self.aggregator, *collaborators], dict(ray.cluster_resources()), nodes)
        if self.aggregator.num_cpus > 0 or self.aggregator.num_gpus > 0:
            reservation = ray.remote(_Reservation).options(
                num_cpus=self.aggregator.num_cpus, num_gpus=self.aggregator.num_gpus
            )
            self._reservation = reservation.remote()
        for collaborator in collaborators:
            _pickle_by_value(collaborator.private_attributes_callable)
            actor_class = ray.remote(_CollaboratorActor).options(
                num_cpus=collaborator.num_cpus,
                num_gpus=collaborator.num_gpus,
            )
            self._actors[collaborator.name] = actor_class.remote(collaborator)
        self._view = RuntimeView([c.name for c in collaborators])
        # each actor built its private attributes: a callable that fails, fails here
        self._get([actor.ready.remote() for actor in self._actors.values()])
        if self._reservation is not None:
            self._get([self._reservation.ready.remote()])

    @staticmethod
    def _get(refs: list[Any]) -> list[Any]:
        import ray

        try:
            return list(ray.get(refs))
        except ray.exceptions.RayTaskError as err:
            cause = getattr(err, "cause", None)
            if isinstance(cause, Exception):
                raise cause from err
            raise
        except ray.exceptions.RayActorError as err:
            cause = getattr(err, "cause", None)
            if isinstance(cause, Exception) and not isinstance(cause, ray.exceptions.RayError):
                raise cause from err
            raise

    def run_chains(
        self,
        flow_class: type[FLSpec],
        step: str,
        state: dict[str, Any],
        names: Sequence[str],
        runtime: Any,
        sink: SnapshotSink | None = None,
    ) -> Iterator[ChainResult]:
        """All the chains start at once; their results come back in the order of `names`, each printed
        and handed on before the next is fetched (and dropped from the object store)."""
        import ray

        missing = [name for name in names if name not in self._actors]
        if missing:
            raise UsageError(f"RayBackend: no actor for {', '.join(missing)} (setup() was not called?)")
        _pickle_by_value(flow_class)
        known = getattr(runtime, "collaborators", None)
        view = RuntimeView(known) if known is not None else self._view
        state_ref = ray.put(state)
        flow_ref = ray.put(flow_class)
        keep = sink is not None
        pending = [
            self._actors[name].run_chain.remote(flow_ref, step, state_ref, view, keep) for name in names
        ]
        del state_ref, flow_ref
        for index in range(len(pending)):
            ref, pending[index] = pending[index], None
            try:
                (result,) = self._get([ref])
            except BaseException as error:  # the chain's tasks up to the failed one are still saved
                if sink is not None:
                    for snapshot in getattr(error, "fx_snapshots", None) or []:
                        sink(snapshot)
                raise
            del ref
            _print_outputs(result.outputs, sys.stdout, sys.stderr)
            if sink is not None:
                for snapshot in result.snapshots:
                    sink(snapshot)
                result.snapshots = []
            yield result

    def close(self) -> None:
        try:
            import ray
        except ImportError:
            return
        if ray.is_initialized():
            for handle in [*self._actors.values(), self._reservation]:
                if handle is not None:
                    with contextlib.suppress(Exception):
                        ray.kill(handle)
        self._actors = {}
        self._reservation = None
        if self._shutdown:
            self._shutdown = False
            ray.shutdown()


LOCAL_START_ATTEMPTS = 2  # a local Ray instance that did not come up in time is started once more


def _start(ray: Any, options: dict[str, Any], *, local: bool) -> None:
    """`ray.init(**options)`; a local instance whose processes did not report in time (a loaded
    machine: Ray waits a fixed time for its GCS server's port file) is shut down and started again."""
    for attempt in range(1, LOCAL_START_ATTEMPTS + 1):
        try:
            ray.init(**options)
            return
        except RuntimeError as err:
            if not local or "Timed out" not in str(err) or attempt == LOCAL_START_ATTEMPTS:
                raise
            log.warning("Ray did not start in time (%s); starting it again", err)
            ray.shutdown()
