"""`fx director | envoy | experimenter` certificate commands as a user runs them, in three folders:
output, exit codes and one-line errors (through `main`, in this process)."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from openfl_cli.cli.main import main
from openfl_cli.pki import keys
from openfl_cli.pki.nodes import certificate_role

HASH = re.compile(r"is ([0-9a-f]{96})$", re.MULTILINE)


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


def fx(*args: str | Path, input: str = "", env: dict[str, str | None] | None = None) -> Result:
    """`fx ARGS` through the real entry point, with `input` on stdin; FQDN unset unless given."""
    with CliRunner().isolation(input=input, env={"FQDN": None, **(env or {})}) as (out, err, _):
        try:
            main([str(arg) for arg in args])
            code = 0
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else 1
    return Result(code, out.getvalue().decode(), err.getvalue().decode())


def ok(*args: str | Path, input: str = "", env: dict[str, str | None] | None = None) -> Result:
    done = fx(*args, input=input, env=env)
    assert done.code == 0, f"fx {' '.join(map(str, args))} exited {done.code}: {done.err}{done.out}"
    return done


def printed_hash(done: Result) -> str:
    found = HASH.search(done.out)
    assert found, done.out
    return found.group(1)


@dataclass(frozen=True)
class Folders:
    director: Path
    envoy: Path
    experimenter: Path


@pytest.fixture
def folders(tmp_path: Path) -> Folders:
    made = Folders(tmp_path / "director", tmp_path / "envoy", tmp_path / "experimenter")
    for folder in (made.director, made.envoy, made.experimenter):
        folder.mkdir()
    return made


def _director(folder: Path) -> None:
    ok("director", "create-ca", "--folder", folder)
    ok("director", "generate-cert-request", "--folder", folder, "--fqdn", "localhost")
    ok("director", "certify", "--folder", folder, "--fqdn", "localhost", "-s")


def test_the_whole_sequence(folders: Folders) -> None:
    director = folders.director
    created = ok("director", "create-ca", "--folder", director)
    assert f"Certificate chain: {director / 'cert' / 'cert_chain.crt'}" in created.out
    assert re.search(r"Root CA fingerprint \(SHA-256\): [0-9a-f]{64}$", created.out, re.MULTILINE)
    request = ok("director", "generate-cert-request", "--folder", director, "--fqdn", "localhost")
    director_hash = printed_hash(request)
    refused = fx("director", "certify", "--folder", director, "--fqdn", "localhost", input="n\n")
    assert refused.code == 2 and "did not confirm" in refused.err
    signed = ok("director", "certify", "--folder", director, "--fqdn", "localhost", input="y\n")
    assert director_hash in signed.out and "director_localhost.crt" in signed.out

    for kind, name, folder in (
        ("envoy", "env_one", folders.envoy),
        ("envoy", "env_two", folders.envoy),
        ("experimenter", "alice", folders.experimenter),
    ):
        requested = ok(kind, "generate-cert-request", "--folder", folder, "-n", name)
        package = folder / f"{kind}_{name}_to_director_cert_request.zip"
        assert f"Send {package} to the director" in requested.out
        certify = ok(
            kind,
            "certify",
            "--folder",
            director,
            "--request-pkg",
            package,
            "--request-hash",
            printed_hash(requested),
        )
        signed_package = director / f"director_to_{kind}_{name}_signed_cert.zip"
        assert f"Send {signed_package} back to the {kind}" in certify.out
        imported = ok(kind, "certify", "--folder", folder, "--import", signed_package)
        assert "Trusted root CA fingerprint" in imported.out
        certificate = folder / "cert" / "client" / f"{kind}_{name}.crt"
        assert certificate_role(certificate.read_bytes()) == kind
        assert keys.common_name(keys.load_certificate(certificate).subject) == name


def test_the_folder_defaults_to_the_current_one(folders: Folders, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(folders.director)
    ok("director", "create-ca")
    env = {"FQDN": "director.example.org"}
    assert "director_director.example.org.csr" in ok("director", "generate-cert-request", env=env).out
    ok("director", "certify", "-s", env=env)
    assert (folders.director / "cert" / "server" / "director_director.example.org.crt").is_file()
    monkeypatch.chdir(folders.envoy)
    ok("envoy", "generate-cert-request", "-n", "env_one")
    assert (folders.envoy / "envoy_env_one_to_director_cert_request.zip").is_file()


def test_certify_needs_exactly_one_of_request_pkg_and_import(folders: Folders) -> None:
    for kind in ("envoy", "experimenter"):
        neither = fx(kind, "certify", "--folder", folders.director)
        assert neither.code == 2 and "exactly one of --request-pkg" in neither.err
        both = fx(
            kind, "certify", "--folder", folders.director, "--request-pkg", "a.zip", "--import", "b.zip"
        )
        assert both.code == 2 and "exactly one of --request-pkg" in both.err
        assert neither.err.count("\n") == 1


def test_usage_errors_exit_2_with_one_line(folders: Folders) -> None:
    _director(folders.director)
    director, envoy = ("--folder", folders.director), ("--folder", folders.envoy)
    ok("envoy", "generate-cert-request", *envoy, "-n", "env_one")
    package = folders.envoy / "envoy_env_one_to_director_cert_request.zip"
    cases: list[tuple[str, tuple[str | Path, ...]]] = [
        ("Missing option '-n'", ("envoy", "generate-cert-request", *envoy)),
        ("invalid envoy name", ("envoy", "generate-cert-request", *envoy, "-n", "../x")),
        ("--force", ("envoy", "generate-cert-request", *envoy, "-n", "env_one")),
        ("--force", ("director", "create-ca", *director)),
        ("invalid FQDN", ("director", "certify", *director, "--fqdn", "../x", "-s")),
        ("fx envoy certify", ("experimenter", "certify", *director, "--request-pkg", package, "-s")),
        ("fx director create-ca", ("envoy", "certify", *envoy, "--request-pkg", package, "-s")),
        ("does not match", ("envoy", "certify", *director, "--request-pkg", package, "--request-hash", "00")),
        ("not found", ("envoy", "certify", *envoy, "--import", folders.director / "none.zip")),
    ]
    for message, args in cases:
        done = fx(*args)
        assert done.code == 2, (args, done)
        assert message in done.err, (args, done.err)
        assert done.err.startswith("fx: error: ") and done.err.count("\n") == 1, (args, done.err)
    assert not (folders.director / "director_to_envoy_env_one_signed_cert.zip").exists()


def test_certify_asks_to_confirm_the_hash(folders: Folders) -> None:
    _director(folders.director)
    requested = ok("experimenter", "generate-cert-request", "--folder", folders.experimenter, "-n", "alice")
    package = folders.experimenter / "experimenter_alice_to_director_cert_request.zip"
    certify = ("experimenter", "certify", "--folder", folders.director, "--request-pkg", package)
    refused = fx(*certify, input="n\n")
    assert refused.code == 2 and printed_hash(requested) in refused.out and "did not confirm" in refused.err
    assert "Does it match the hash printed on the experimenter's node?" in refused.out
    ok(*certify, input="y\n")
    assert (folders.director / "director_to_experimenter_alice_signed_cert.zip").is_file()


def test_every_new_command_has_help() -> None:
    for group, commands in {
        "director": ("create-ca", "generate-cert-request", "certify"),
        "envoy": ("generate-cert-request", "certify"),
        "experimenter": ("generate-cert-request", "certify"),
    }.items():
        assert group in ok("--help").out
        for command in commands:
            assert "--folder" in ok(group, command, "--help").out


def test_the_command_module_imports_no_cryptography() -> None:
    code = (
        "import sys, openfl_cli.cli.node_certs; "
        "print(any(m.startswith(('cryptography', 'grpc')) for m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
