"""`FederatedRuntime`: a flow run on a director and its envoys, from a notebook or a script.

`flow.run()` packages the experiment's code (the notebook or the script that defines the flow, see
`experiment.py`), sends it with the flow's attributes to the director, prints every participant's output
as it comes, and leaves the flow holding the final attributes, as the LocalRuntime does. Certificates are
read here, when the flow runs, and never enter the package: the director has its own.
"""

from __future__ import annotations

import getpass
import inspect
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openfl_cli.errors import FxError, UsageError
from openfl_cli.workflow.experiment import loading_experiment

if TYPE_CHECKING:
    from openfl_cli.transport.director.client import ExperimenterClient
    from openfl_cli.transport.tls import TlsMaterial
    from openfl_cli.workflow.flspec import FLSpec

DIRECTOR_KEYS = ("director_node_fqdn", "director_port", "cert_chain", "api_cert", "api_private_key")


@dataclass(frozen=True)
class EnvoyStatus:
    name: str
    online: bool
    last_seen: float  # epoch seconds of its last health report (0: never)
    experiment: str  # what it runs now


class FederatedRuntime:
    def __init__(
        self,
        collaborators: Sequence[str] | None = None,
        director: Mapping[str, Any] | None = None,
        notebook_path: str | Path | None = None,
        tls: bool = True,
        user: str | None = None,
    ) -> None:
        """`collaborators`: the envoys (by name) that host the flow's collaborators; only they receive the
        experiment. `director`: its `director_node_fqdn` and `director_port`, and with `tls` the paths of
        `cert_chain`, `api_cert` and `api_private_key` (the experimenter's certificate). `notebook_path`:
        the notebook that defines the flow (default: the file of the flow's class). `user`: the name to
        submit under without TLS (with TLS, the certificate's common name)."""
        self._collaborators = [str(name) for name in collaborators or []]
        self.director = dict(director or {})
        self.notebook_path = Path(notebook_path) if notebook_path is not None else None
        self.tls = bool(tls)
        self.user = user
        self.experiment: str | None = None  # the id of the last experiment submitted
        if loading_experiment():
            return  # built by experiment code being imported at the director: inert, reads nothing
        unknown = sorted(set(self.director) - set(DIRECTOR_KEYS))
        if unknown:
            raise UsageError(
                f"FederatedRuntime: director has unknown keys {unknown}; expected {DIRECTOR_KEYS}"
            )
        for key in DIRECTOR_KEYS[:2]:
            if not self.director.get(key):
                raise UsageError(f"FederatedRuntime: director needs {key!r}")
        if self.tls:
            missing = [key for key in DIRECTOR_KEYS[2:] if not self.director.get(key)]
            if missing:
                raise UsageError(
                    f"FederatedRuntime: with tls=True the director needs {', '.join(missing)}"
                    " (or tls=False for a director started with --disable-tls)"
                )

    @property
    def collaborators(self) -> list[str]:
        return list(self._collaborators)

    def get_envoys(self) -> list[EnvoyStatus]:
        """The envoys the director knows, and whether each is online (from its health reports)."""
        client = self._client()
        try:
            listing = client.list_envoys()
        finally:
            client.close()
        return [EnvoyStatus(e.name, e.online, e.last_seen, e.experiment) for e in listing.envoys]

    def execute(self, flow: FLSpec) -> None:
        if loading_experiment():
            raise UsageError(
                "the experiment's code calls flow.run() when it is imported: put that under"
                " `if __name__ == '__main__':` (a script) or leave that cell unexported (a notebook)"
            )
        from openfl_cli.proto import director_pb2 as dpb
        from openfl_cli.workflow.experiment import package_experiment
        from openfl_cli.workflow.remote_types import check_collaborators
        from openfl_cli.workflow.wire import dump_state, load_state

        flow_class = type(flow)
        names = check_collaborators(self._collaborators)
        package = package_experiment(self._source(flow_class), flow_class.__qualname__)
        for line in package.left_out:
            print(f"[fx] not exported: {line}", file=sys.stderr)
        module = sys.modules[flow_class.__module__]
        payload, arrays = dump_state(_traveling(flow), [module.__name__])
        client = self._client()
        try:
            submission = dpb.SubmissionHeader(
                name=flow_class.__name__,
                collaborators=names,
                flow_class=flow_class.__qualname__,
                archive=package.archive,
                checkpoint=flow.checkpoint,
            )
            submitted = client.submit(submission, payload, arrays)
            del payload, arrays
            self.experiment = submitted.experiment
            print(f"[fx] experiment {submitted.experiment} submitted (hash {submitted.hash})", flush=True)
            failure = _follow(client, submitted.experiment)
            if failure is not None:
                raise FxError(f"experiment {submitted.experiment} failed: {failure}")
            result = client.result(submitted.experiment)
        finally:
            client.close()
        final = load_state(result.payload, result.arrays, module)
        for name in [n for n in vars(flow) if not n.startswith("_fx_") and n not in final]:
            delattr(flow, name)  # what the flow dropped on the way (include / exclude) is gone here too
        flow.__dict__.update(final)

    def _source(self, flow_class: type) -> Path:
        if self.notebook_path is not None:
            return self.notebook_path
        try:
            found = inspect.getsourcefile(flow_class)
        except TypeError:
            found = None
        if not found or not Path(found).is_file():
            raise UsageError(
                f"FederatedRuntime: cannot tell which file defines {flow_class.__name__};"
                " give notebook_path= (the notebook or script)"
            )
        return Path(found)

    def _client(self) -> ExperimenterClient:
        from openfl_cli.transport.director.client import ExperimenterClient

        tls, user = self._identity()
        return ExperimenterClient(
            str(self.director["director_node_fqdn"]), int(self.director["director_port"]), user, tls
        )

    def _identity(self) -> tuple[TlsMaterial | None, str]:
        if not self.tls:
            return None, self.user or getpass.getuser()
        from openfl_cli.pki.credentials import read_tls_material
        from openfl_cli.pki.layout import TlsPaths
        from openfl_cli.pki.nodes import certificate_common_name

        paths = TlsPaths(
            Path(self.director["cert_chain"]).expanduser(),
            Path(self.director["api_cert"]).expanduser(),
            Path(self.director["api_private_key"]).expanduser(),
        )
        material = read_tls_material(paths, "fx experimenter generate-cert-request` and `certify --import")
        assert material.certificate is not None
        name = certificate_common_name(material.certificate)
        if not name:
            raise UsageError(f"{paths.certificate}: the certificate has no common name")
        return material, name

    def __repr__(self) -> str:
        where = f"{self.director.get('director_node_fqdn')}:{self.director.get('director_port')}"
        return f"FederatedRuntime(director={where!r}, collaborators={self._collaborators})"


def _traveling(flow: FLSpec) -> dict[str, Any]:
    return {k: v for k, v in vars(flow).items() if not k.startswith("_fx_")}


def _follow(client: ExperimenterClient, experiment: str) -> str | None:
    """Print the experiment's events as they come; its error when it failed, else None."""
    for event in client.watch(experiment):
        kind = event.WhichOneof("kind")
        if kind == "output":
            stream = sys.stderr if event.output.stderr else sys.stdout
            print(event.output.text, file=stream, flush=True)
        elif kind == "status" and event.status:  # an empty one only says the stream is alive
            print(f"[director] {event.status}", flush=True)
        elif kind == "finished":
            return None if event.finished.ok else event.finished.error or "unknown error"
    return "the director ended the stream before the experiment ended"
