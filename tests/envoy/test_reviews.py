"""Plan review at an envoy: the ReviewBoard's accept and review policies, decisions by hash prefix, what
counts as accepted; and the admin's local socket that `fx envoy accept | reject | pending` talk to."""

from __future__ import annotations

import json
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from openfl_cli.envoy.reviews import AdminSocket, ReviewBoard, ask_envoy, socket_path
from openfl_cli.errors import UsageError
from openfl_cli.proto import director_pb2 as dpb
from openfl_cli.workflow.experiment import ExperimentPackage, package_experiment

FLOW = '''\
"""A flow to review."""
from openfl_cli.workflow import FLSpec, aggregator


class ReviewedFlow(FLSpec):
    @aggregator
    def start(self):
        self.next(self.end)

    @aggregator
    def end(self):
        print("{marker}")
'''


def _package(folder: Path, marker: str, requirements: str | None = None) -> ExperimentPackage:
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "flow.py"
    script.write_text(FLOW.format(marker=marker))
    if requirements is not None:
        (folder / "requirements.txt").write_text(requirements)
    return package_experiment(script, "ReviewedFlow")


def _review(package: ExperimentPackage, experiment: str) -> dpb.Review:
    return dpb.Review(
        experiment=experiment,
        hash=package.hash,
        archive=package.archive,
        submitted_by="alice",
        name=package.flow_class,
    )


class Board:
    """A ReviewBoard in tmp_path and the decisions it sent."""

    def __init__(self, folder: Path, policy: str) -> None:
        self.folder = folder
        self.sent: list[dpb.Decision] = []
        self.board = ReviewBoard("env_one", policy, folder, self.sent.append)


@pytest.fixture
def packages(tmp_path: Path) -> dict[str, ExperimentPackage]:
    return {
        "one": _package(tmp_path / "src_one", "one"),
        "two": _package(tmp_path / "src_two", "two"),
        "needy": _package(tmp_path / "src_needy", "needy", "surely-not-installed-xyz==1\n"),
    }


# -- policy accept -------------------------------------------------------------------------------------


def test_policy_accept_sends_an_accepted_decision_at_once(tmp_path: Path, packages) -> None:
    board = Board(tmp_path / "envoy", "accept")
    package = packages["one"]
    board.board.offer(_review(package, "Flow-1"), package)
    assert board.sent == [
        dpb.Decision(experiment="Flow-1", hash=package.hash, accepted=True, reason="accepted by policy")
    ]
    assert board.board.pending() == []
    assert board.board.accepted("Flow-1", package.hash) is package


def test_policy_accept_rejects_when_a_requirement_is_missing(tmp_path: Path, packages) -> None:
    board = Board(tmp_path / "envoy", "accept")
    package = packages["needy"]
    assert package.requirements == ("surely-not-installed-xyz==1",)
    board.board.offer(_review(package, "Flow-2"), package)
    [decision] = board.sent
    assert not decision.accepted
    assert decision.reason == "envoy env_one lacks requirements: surely-not-installed-xyz==1"
    assert list(decision.missing_requirements) == ["surely-not-installed-xyz==1"]
    assert board.board.accepted("Flow-2", package.hash) is None


# -- policy review -------------------------------------------------------------------------------------


def test_policy_review_keeps_it_pending_with_its_files_unpacked(tmp_path: Path, packages) -> None:
    board = Board(tmp_path / "envoy", "review")
    package = packages["needy"]
    board.board.offer(_review(package, "Flow-3"), package)
    assert board.sent == []
    assert board.board.accepted("Flow-3", package.hash) is None
    target = tmp_path / "envoy" / "reviews" / package.hash[:16]
    assert sorted(p.name for p in target.iterdir()) == sorted(package.files)
    assert 'print("needy")' in (target / "experiment.py").read_text()
    assert (target / "requirements.txt").read_text() == "surely-not-installed-xyz==1\n"
    [pending] = board.board.pending()
    assert pending == {
        "hash": package.hash,
        "experiment": "Flow-3",
        "submitted_by": "alice",
        "flow": "ReviewedFlow",
        "files": list(package.files),
        "requirements": ["surely-not-installed-xyz==1"],
        "missing_requirements": ["surely-not-installed-xyz==1"],
        "folder": str(target),
    }


def test_decide_by_a_hash_prefix_accepts_that_experiment(tmp_path: Path, packages) -> None:
    board = Board(tmp_path / "envoy", "review")
    one, two = packages["one"], packages["two"]
    board.board.offer(_review(one, "Flow-1"), one)
    board.board.offer(_review(two, "Flow-2"), two)
    decided = board.board.decide(one.hash[:8], True, "")
    assert decided.review.experiment == "Flow-1"
    assert board.sent == [
        dpb.Decision(experiment="Flow-1", hash=one.hash, accepted=True, reason="accepted by the admin")
    ]
    assert [p["experiment"] for p in board.board.pending()] == ["Flow-2"]
    assert board.board.accepted("Flow-1", one.hash) is one
    assert board.board.accepted("Flow-2", two.hash) is None


def test_one_decision_covers_every_experiment_waiting_with_the_same_code(tmp_path: Path, packages) -> None:
    board = Board(tmp_path / "envoy", "review")
    one = packages["one"]
    board.board.offer(_review(one, "Flow-1"), one)
    board.board.offer(_review(one, "Flow-2"), one)  # the same code submitted twice: neither is lost
    assert [p["experiment"] for p in board.board.pending()] == ["Flow-1", "Flow-2"]
    board.board.decide(one.hash[:12], True, "")
    assert [d.experiment for d in board.sent] == ["Flow-1", "Flow-2"]
    assert board.board.accepted("Flow-1", one.hash) is one and board.board.accepted("Flow-2", one.hash) is one


def test_decide_can_reject_with_a_reason(tmp_path: Path, packages) -> None:
    board = Board(tmp_path / "envoy", "review")
    package = packages["one"]
    board.board.offer(_review(package, "Flow-1"), package)
    board.board.decide(package.hash, False, "not on my data")
    [decision] = board.sent
    assert (decision.accepted, decision.reason) == (False, "not on my data")
    assert board.board.pending() == []
    assert board.board.accepted("Flow-1", package.hash) is None


def test_decide_refuses_a_short_or_unknown_prefix_listing_what_waits(tmp_path: Path, packages) -> None:
    board = Board(tmp_path / "envoy", "review")
    package = packages["one"]
    board.board.offer(_review(package, "Flow-1"), package)
    other = ("1" if package.hash[0] == "0" else "0") + package.hash[1:12]  # hex, but not its hash
    for prefix in (package.hash[:7], "", other):
        with pytest.raises(UsageError, match="matches no experiment awaiting review") as excinfo:
            board.board.decide(prefix, True, "")
        assert f"(waiting: {package.hash[:12]})" in str(excinfo.value)
    assert board.sent == [] and len(board.board.pending()) == 1


def test_decide_with_nothing_waiting_says_none(tmp_path: Path) -> None:
    board = Board(tmp_path / "envoy", "review")
    with pytest.raises(UsageError, match=r"\(waiting: none\)"):
        board.board.decide("abcdef12", True, "")


def test_accepted_needs_the_same_experiment_and_hash(tmp_path: Path, packages) -> None:
    board = Board(tmp_path / "envoy", "accept")
    one, two = packages["one"], packages["two"]
    board.board.offer(_review(one, "Flow-1"), one)
    assert board.board.accepted("Flow-1", one.hash) is one
    assert board.board.accepted("Flow-1", two.hash) is None
    assert board.board.accepted("Flow-9", one.hash) is None


def test_forget_drops_an_accepted_or_pending_experiment(tmp_path: Path, packages) -> None:
    accepting = Board(tmp_path / "a", "accept")
    one = packages["one"]
    accepting.board.offer(_review(one, "Flow-1"), one)
    accepting.board.forget("Flow-1")
    assert accepting.board.accepted("Flow-1", one.hash) is None
    reviewing = Board(tmp_path / "r", "review")
    two = packages["two"]
    reviewing.board.offer(_review(one, "Flow-1"), one)
    reviewing.board.offer(_review(two, "Flow-2"), two)
    reviewing.board.forget("Flow-1")
    assert [p["experiment"] for p in reviewing.board.pending()] == ["Flow-2"]
    with pytest.raises(UsageError):
        reviewing.board.decide(one.hash, True, "")
    reviewing.board.forget("Flow-unknown")  # nothing to forget: no error


# -- the admin socket ----------------------------------------------------------------------------------


@pytest.fixture
def short_folder() -> Iterator[Path]:
    """A folder with a short path: an AF_UNIX socket path holds at most ~107 bytes."""
    folder = Path(tempfile.mkdtemp(prefix="fx-envoy-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def admin(short_folder: Path, packages) -> Iterator[tuple[Board, AdminSocket]]:
    board = Board(short_folder, "review")
    package = packages["one"]
    board.board.offer(_review(package, "Flow-1"), package)
    server = AdminSocket(socket_path(short_folder, "env_one"), board.board)
    server.start()
    yield board, server
    server.stop()


def _raw_request(path: Path, line: bytes) -> dict[str, object]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(5)
        client.connect(str(path))
        client.sendall(line)
        data = b""
        while not data.endswith(b"\n"):
            part = client.recv(4096)
            if not part:
                break
            data += part
    return json.loads(data)


def test_the_socket_file_is_private_to_the_envoys_user(admin, short_folder: Path) -> None:
    path = socket_path(short_folder, "env_one")
    assert path.name == ".fx-envoy-env_one.sock"
    mode = path.stat().st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600


def test_pending_then_decide_through_the_socket(admin, short_folder: Path, packages) -> None:
    board, _ = admin
    package = packages["one"]
    answer = ask_envoy(short_folder, "env_one", {"op": "pending"})
    assert [p["hash"] for p in answer["pending"]] == [package.hash]  # type: ignore[index]
    assert ask_envoy(short_folder, None, {"op": "pending"}) == answer  # the only socket there
    decided = ask_envoy(
        short_folder, "env_one", {"op": "decide", "hash": package.hash[:12], "accept": False, "reason": "no"}
    )
    assert decided["decided"]["experiment"] == "Flow-1"  # type: ignore[index]
    assert [(d.accepted, d.reason) for d in board.sent] == [(False, "no")]
    assert ask_envoy(short_folder, "env_one", {"op": "pending"}) == {"pending": []}


def test_a_decision_the_board_refuses_comes_back_as_a_usage_error(admin, short_folder: Path) -> None:
    with pytest.raises(UsageError, match="matches no experiment awaiting review"):
        ask_envoy(short_folder, "env_one", {"op": "decide", "hash": "abc", "accept": True})


def test_an_unknown_op_is_refused(admin, short_folder: Path) -> None:
    with pytest.raises(UsageError, match="unknown request 'shutdown'"):
        ask_envoy(short_folder, "env_one", {"op": "shutdown"})
    path = socket_path(short_folder, "env_one")
    assert _raw_request(path, b'["pending"]\n') == {"error": "expected a JSON object"}


def test_a_bad_json_line_gets_an_error_and_the_socket_keeps_serving(admin, short_folder: Path) -> None:
    path = socket_path(short_folder, "env_one")
    answer = _raw_request(path, b"{not json\n")
    assert str(answer["error"]).startswith("bad request: ")
    assert _raw_request(path, b"\xff\xfe\n")["error"].startswith("bad request: ")  # type: ignore[union-attr]
    assert len(ask_envoy(short_folder, "env_one", {"op": "pending"})["pending"]) == 1  # type: ignore[arg-type]


def test_stop_removes_the_socket(short_folder: Path) -> None:
    board = Board(short_folder, "review")
    server = AdminSocket(socket_path(short_folder, "env_one"), board.board)
    server.start()
    assert socket_path(short_folder, "env_one").exists()
    server.stop()
    assert not socket_path(short_folder, "env_one").exists()
    with pytest.raises(UsageError, match="no running envoy"):
        ask_envoy(short_folder, None, {"op": "pending"})


def test_ask_envoy_without_a_running_envoy_is_a_usage_error(short_folder: Path) -> None:
    with pytest.raises(UsageError, match=r"no running envoy \(its \.fx-envoy-NAME\.sock\)"):
        ask_envoy(short_folder, None, {"op": "pending"})
    with pytest.raises(UsageError, match="no running envoy answers there"):
        ask_envoy(short_folder, "env_one", {"op": "pending"})
    stale = socket_path(short_folder, "env_two")  # a socket file left behind by an envoy that is gone
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as gone:
        gone.bind(str(stale))
    with pytest.raises(UsageError, match="no running envoy answers there"):
        ask_envoy(short_folder, None, {"op": "pending"})


def test_ask_envoy_with_several_envoys_needs_a_name(short_folder: Path) -> None:
    for name in ("env_one", "env_two"):
        socket_path(short_folder, name).touch()
    with pytest.raises(UsageError, match=r"several envoys .* name the envoy with -n NAME"):
        ask_envoy(short_folder, None, {"op": "pending"})


def test_a_second_envoy_cannot_take_a_running_envoys_socket(admin, short_folder: Path) -> None:
    path = socket_path(short_folder, "env_one")
    intruder = AdminSocket(path, Board(short_folder / "other", "review").board)
    try:
        with pytest.raises(UsageError):
            intruder.start()
    finally:
        if intruder._server is not None:  # it took the path: close it (the test has failed by now)
            intruder.stop()
    assert len(ask_envoy(short_folder, "env_one", {"op": "pending"})["pending"]) == 1  # type: ignore[arg-type]


def test_a_socket_path_too_long_is_a_usage_error(tmp_path: Path) -> None:
    folder = tmp_path / ("f" * 100)
    folder.mkdir()
    server = AdminSocket(socket_path(folder, "env_one"), Board(folder, "review").board)
    with pytest.raises(UsageError, match="too long"):
        server.start()
