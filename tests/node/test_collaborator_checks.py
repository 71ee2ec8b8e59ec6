"""`fx collaborator start` and `ping` report local mistakes (the data path, a missing TLS file) in one
line before they dial the aggregator (issue 18, item 14)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from openfl_cli.errors import SecurityError, UsageError
from openfl_cli.node.collaborator import start_collaborator
from openfl_cli.node.ping import ping_aggregator
from tests.cli.test_node_cert_commands import ok


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An initialized numpy/digits workspace (current folder) whose aggregator address nobody serves."""
    folder = tmp_path / "ws"
    ok("workspace", "create", "--prefix", folder, "--template", "numpy/digits")
    monkeypatch.chdir(folder)
    ok("plan", "initialize", "-a", "127.0.0.1")
    return folder


@pytest.fixture
def no_dialing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to connect fails the test: the checks must come first."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("dialed the aggregator before the local checks")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr("openfl_cli.transport.client.AggregatorClient.ping", refuse)


def test_a_missing_data_path_is_named_before_connecting(workspace: Path, no_dialing: None) -> None:
    missing = workspace / "no" / "such" / "folder"
    ok("collaborator", "create", "-n", "site1", "-d", missing)
    with pytest.raises(UsageError) as raised:
        start_collaborator("site1")
    message = str(raised.value)
    assert message.startswith("plan/data.yaml: collaborator site1: data path ")
    assert str(missing) in message and "does not exist" in message
    assert "\n" not in message


def test_a_relative_data_path_says_what_it_is_relative_to(workspace: Path, no_dialing: None) -> None:
    ok("collaborator", "create", "-n", "site1", "-d", "data/site1")
    with pytest.raises(UsageError, match=r"'data/site1' does not exist \(relative to .*ws\)"):
        start_collaborator("site1")


@pytest.mark.parametrize("data_path", ["1", "data", "site-1"])
def test_a_shard_number_a_name_or_an_existing_folder_passes_on_to_the_tls_files(
    workspace: Path, no_dialing: None, data_path: str
) -> None:
    ok("collaborator", "create", "-n", "site1", "-d", data_path)
    with pytest.raises(SecurityError, match="missing or unreadable TLS file"):
        start_collaborator("site1")


def test_ping_names_the_missing_tls_files_as_start_does(workspace: Path, no_dialing: None) -> None:
    ok("collaborator", "create", "-n", "site1", "-d", "1")
    with pytest.raises(SecurityError) as from_ping:
        ping_aggregator("site1")
    with pytest.raises(SecurityError) as from_start:
        start_collaborator("site1")
    assert str(from_ping.value) == str(from_start.value)
    assert "cert/client/col_site1.crt" in str(from_ping.value)
    assert "cert/client/col_site1.key" in str(from_ping.value)
