"""Plan review at an envoy: which experiments its admin accepted, which wait, and the local socket
through which `fx envoy accept | reject | pending` reach the running envoy.

The decision is the envoy's own, made on this machine: the director only learns it. An experiment's
code is unpacked for the admin to read, but nothing of it is imported before it is accepted here.
The socket lives in the envoy's folder with mode 0600, so only the envoy's own user can decide.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openfl_cli.errors import FxError, UsageError
from openfl_cli.proto import director_pb2 as dpb
from openfl_cli.utils.fs import atomic_write_bytes
from openfl_cli.workflow.experiment import ExperimentPackage, missing_requirements

log = logging.getLogger(__name__)
MIN_PREFIX = 8  # hex digits of the hash an admin must type
MAX_REQUEST = 64 << 10


def socket_path(folder: Path, name: str) -> Path:
    return folder / f".fx-envoy-{name}.sock"


@dataclass
class PendingReview:
    review: dpb.Review
    package: ExperimentPackage
    folder: Path  # where its files are, for the admin to read
    missing: list[str]

    def describe(self) -> dict[str, Any]:
        return {
            "hash": self.package.hash,
            "experiment": self.review.experiment,
            "submitted_by": self.review.submitted_by,
            "flow": self.package.flow_class,
            "files": list(self.package.files),
            "requirements": list(self.package.requirements),
            "missing_requirements": self.missing,
            "folder": str(self.folder),
        }


class ReviewBoard:
    """`offer` each review as it arrives; `send` tells the director a decision."""

    def __init__(self, name: str, policy: str, folder: Path, send: Callable[[dpb.Decision], None]) -> None:
        self.name = name
        self.policy = policy
        self.folder = folder
        self._send = send
        self._lock = threading.Lock()
        self._pending: dict[str, PendingReview] = {}
        self._accepted: dict[str, ExperimentPackage] = {}  # experiment id -> its accepted package

    def offer(self, review: dpb.Review, package: ExperimentPackage) -> None:
        missing = missing_requirements(package.requirements)
        target = self.folder / "reviews" / package.hash[:16]
        for entry in package.files:  # the code, unpacked for reading only
            atomic_write_bytes(target / entry, _entry(package, entry))
        pending = PendingReview(review, package, target, missing)
        if self.policy == "accept":
            if missing:
                self._finish(pending, False, f"envoy {self.name} lacks requirements: {', '.join(missing)}")
            else:
                self._finish(pending, True, "accepted by policy")
            return
        with self._lock:
            self._pending[review.experiment] = pending
        log.warning(
            "experiment %s from %s awaits review: hash %s; files %s in %s; requirements: %s%s",
            review.experiment,
            review.submitted_by or "?",
            package.hash,
            ", ".join(package.files),
            target,
            ", ".join(package.requirements) or "none",
            f" (missing here: {', '.join(missing)})" if missing else "",
        )
        log.warning(
            "decide with: fx envoy accept %s -n %s   or   fx envoy reject %s -n %s --reason TEXT",
            package.hash[:12],
            self.name,
            package.hash[:12],
            self.name,
        )

    def decide(self, prefix: str, accepted: bool, reason: str) -> PendingReview:
        """Decide on the code with this hash (or its first 8+ digits): every experiment waiting with it."""
        with self._lock:
            found = [
                p
                for p in self._pending.values()
                if len(prefix) >= MIN_PREFIX and p.package.hash.startswith(prefix)
            ]
            if len({p.package.hash for p in found}) != 1:
                waiting = ", ".join(sorted({p.package.hash[:12] for p in self._pending.values()})) or "none"
                what = "matches no" if not found else "matches more than one"
                raise UsageError(f"hash {prefix!r} {what} experiment awaiting review (waiting: {waiting})")
            for pending in found:
                del self._pending[pending.review.experiment]
        for pending in found:
            self._finish(pending, accepted, reason or ("accepted by the admin" if accepted else ""))
        return found[-1]

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [p.describe() for p in self._pending.values()]

    def accepted(self, experiment: str, package_hash: str) -> ExperimentPackage | None:
        with self._lock:
            package = self._accepted.get(experiment)
        return package if package is not None and package.hash == package_hash else None

    def forget(self, experiment: str) -> None:
        with self._lock:
            self._accepted.pop(experiment, None)
            self._pending.pop(experiment, None)

    def _finish(self, pending: PendingReview, accepted: bool, reason: str) -> None:
        if accepted:
            with self._lock:
                self._accepted[pending.review.experiment] = pending.package
        verdict = "accepted" if accepted else "rejected"
        log.info(
            "experiment %s (%s) %s: %s", pending.review.experiment, pending.package.hash[:12], verdict, reason
        )
        self._send(
            dpb.Decision(
                experiment=pending.review.experiment,
                hash=pending.package.hash,
                accepted=accepted,
                reason=reason,
                missing_requirements=pending.missing,
            )
        )


def _entry(package: ExperimentPackage, name: str) -> bytes:
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(package.archive)) as archive:
        return archive.read(name)


class AdminSocket:
    """The envoy's local socket: one JSON request line in, one JSON answer line out."""

    def __init__(self, path: Path, board: ReviewBoard) -> None:
        self.path = path
        self._board = board
        self._server: socket.socket | None = None

    def start(self) -> None:
        if _answers(self.path):
            raise UsageError(f"{self.path}: an envoy of that name already runs in this folder")
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a previous envoy's, which is gone (nothing answered there)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_mask = os.umask(0o177)
        try:
            server.bind(str(self.path))
        except OSError as error:
            server.close()
            raise UsageError(
                f"{self.path}: cannot open the envoy's admin socket ({error}; a socket path may be at most"
                " 107 bytes long): start the envoy in a folder with a shorter path"
            ) from None
        finally:
            os.umask(old_mask)
        server.listen(4)
        self._server = server
        threading.Thread(target=self._serve, name="fx-envoy-admin", daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _serve(self) -> None:
        while self._server is not None:
            try:
                connection, _ = self._server.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(10)
                try:
                    answer = self._answer(_read_line(connection))
                except (OSError, ValueError) as error:
                    answer = {"error": f"bad request: {error}"}
                with contextlib.suppress(OSError):
                    connection.sendall(json.dumps(answer).encode() + b"\n")

    def _answer(self, request: Any) -> dict[str, Any]:
        if not isinstance(request, dict):
            return {"error": "expected a JSON object"}
        try:
            if request.get("op") == "pending":
                return {"pending": self._board.pending()}
            if request.get("op") == "decide":
                pending = self._board.decide(
                    str(request.get("hash", "")), bool(request.get("accept")), str(request.get("reason", ""))
                )
                return {"decided": pending.describe()}
        except FxError as error:
            return {"error": str(error)}
        return {"error": f"unknown request {request.get('op')!r}"}


def _answers(path: Path) -> bool:
    """Whether a live process listens on the socket at `path`."""
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(2)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def _read_line(connection: socket.socket) -> Any:
    data = b""
    while not data.endswith(b"\n"):
        part = connection.recv(4096)
        if not part:
            break
        data += part  # a request is one short line, bounded below
        if len(data) > MAX_REQUEST:
            raise ValueError("request too long")
    return json.loads(data.decode("utf-8"))


def ask_envoy(folder: Path, name: str | None, request: dict[str, Any]) -> dict[str, Any]:
    """What `fx envoy accept | reject | pending` send to the running envoy of `folder`."""
    path = _find_socket(folder, name)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(30)
        try:
            client.connect(str(path))
        except OSError as error:
            raise UsageError(f"{path}: no running envoy answers there ({error})") from None
        client.sendall(json.dumps(request).encode() + b"\n")
        answer = _read_line(client)
    if not isinstance(answer, dict):
        raise FxError(f"{path}: unexpected answer from the envoy")
    if "error" in answer:
        raise UsageError(str(answer["error"]))
    return answer


def _find_socket(folder: Path, name: str | None) -> Path:
    if name is not None:
        return socket_path(folder, name)
    found = sorted(folder.glob(".fx-envoy-*.sock"))
    if len(found) != 1:
        what = "no running envoy" if not found else "several envoys"
        raise UsageError(f"{folder}: {what} (its .fx-envoy-NAME.sock); name the envoy with -n NAME")
    return found[0]
