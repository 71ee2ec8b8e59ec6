"""Usage errors exit 2 with one line, and a question that meets the end of input says what it asked
and which option answers it without a prompt (issue 18, item 13)."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from openfl_cli.cli.prompts import confirm
from openfl_cli.errors import UsageError
from tests.cli.test_node_cert_commands import Result, fx, ok


def error_line(done: Result) -> str:
    """The one line a usage error prints (stderr holds nothing else)."""
    lines = done.err.strip().splitlines()
    assert done.code == 2, f"exit {done.code}: {done.err}{done.out}"
    assert len(lines) == 1 and lines[0].startswith("fx: error: "), done.err
    return lines[0]


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "ws"
    ok("workspace", "create", "--prefix", folder, "--template", "numpy/digits")
    monkeypatch.chdir(folder)
    return folder


def test_quickstart_with_an_unknown_template_is_a_usage_error_before_anything_is_made(tmp_path: Path) -> None:
    prefix = tmp_path / "qs"
    line = error_line(fx("quickstart", "--template", "nope/none", "--prefix", prefix))
    assert "unknown template 'nope/none'" in line and "numpy/digits" in line
    assert not prefix.exists()


@pytest.mark.parametrize(
    ("option", "value", "named"),
    [("--fqdn", "bad name!", "invalid FQDN"), ("--timeout", "0", "--timeout")],
)
def test_quickstart_refuses_bad_option_values_with_exit_2(
    tmp_path: Path, option: str, value: str, named: str
) -> None:
    prefix = tmp_path / "qs"
    line = error_line(fx("quickstart", "--template", "numpy/digits", option, value, "--prefix", prefix))
    assert named in line
    assert not prefix.exists()


def test_aggregator_certify_at_the_end_of_input_names_the_question_and_silent(workspace: Path) -> None:
    ok("workspace", "certify")
    ok("aggregator", "generate-cert-request", "--fqdn", "localhost")
    line = error_line(fx("aggregator", "certify", "--fqdn", "localhost", input=""))
    assert "Does it match the hash printed on this node" in line and "-s/--silent" in line
    assert not (workspace / "cert" / "server" / "agg_localhost.crt").exists()
    ok("aggregator", "certify", "--fqdn", "localhost", input="y\n")  # a piped answer still works


def test_collaborator_certify_at_the_end_of_input_names_request_hash(workspace: Path) -> None:
    ok("workspace", "certify")
    ok("collaborator", "generate-cert-request", "-n", "site1")
    package = workspace / "col_site1_to_agg_cert_request.zip"
    line = error_line(fx("collaborator", "certify", "--request-pkg", package, input=""))
    assert "hash printed on the collaborator's node" in line
    assert "--request-hash" in line and "-s/--silent" in line


def test_collaborator_create_without_a_data_path_at_the_end_of_input(workspace: Path) -> None:
    line = error_line(fx("collaborator", "create", "-n", "site1", input=""))
    assert "Data path of collaborator site1" in line and "-d/--data_path" in line
    done = ok("collaborator", "create", "-n", "site1", input="1\n")
    assert "Recorded the data path of site1" in done.out


def test_director_and_envoy_certify_at_the_end_of_input(tmp_path: Path) -> None:
    director, envoy = tmp_path / "director", tmp_path / "envoy"
    ok("director", "create-ca", "--folder", director)
    ok("director", "generate-cert-request", "--folder", director, "--fqdn", "localhost")
    line = error_line(fx("director", "certify", "--folder", director, "--fqdn", "localhost", input=""))
    assert "-s/--silent" in line
    ok("envoy", "generate-cert-request", "--folder", envoy, "-n", "env_one")
    package = envoy / "envoy_env_one_to_director_cert_request.zip"
    line = error_line(fx("envoy", "certify", "--folder", director, "--request-pkg", package, input=""))
    assert "hash printed on the envoy's node" in line and "--request-hash" in line


def test_ctrl_c_at_a_question_still_aborts() -> None:
    def interrupted() -> bool:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise click.exceptions.Abort() from None

    from openfl_cli.cli import prompts

    with pytest.raises(click.exceptions.Abort):
        prompts._asking("Go on?", "give --yes", interrupted)


def test_end_of_input_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def ended(*args: object, **kwargs: object) -> bool:
        try:
            raise EOFError
        except EOFError:
            raise click.exceptions.Abort() from None

    monkeypatch.setattr(click, "confirm", ended)
    with pytest.raises(UsageError, match=r"no answer to 'Go on' \(the input ended\); give --yes"):
        confirm("Go on?", without_prompt="give --yes")


def test_model_save_into_a_folder_that_is_a_file_is_one_line(workspace: Path) -> None:
    ok("plan", "initialize", "-a", "localhost")
    (workspace / "taken").write_text("a file, not a folder")
    line = error_line(fx("model", "save", "-i", "save/init.pbuf", "-o", workspace / "taken" / "model.npz"))
    assert "taken/model.npz: cannot write the model" in line


def test_an_os_error_no_command_explained_is_still_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise NotADirectoryError(20, "Not a directory", str(tmp_path / "x"))

    monkeypatch.setattr("openfl_cli.workspace.create.create_workspace", broken)
    line = error_line(fx("workspace", "create", "--prefix", tmp_path / "x" / "ws"))
    assert str(tmp_path / "x") in line and "Not a directory" in line
