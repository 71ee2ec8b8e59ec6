"""The workspace life cycle through the real `fx`: create, initialize, validate, export, import, save."""

from __future__ import annotations

import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.e2e

Fx = Callable[..., subprocess.CompletedProcess[str]]
SECRETS = {
    "cert/cert_chain.crt": b"chain",
    "cert/client/col_one.key": b"-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n",
    "cert/client/col_one.csr": b"csr",
    "src/leftover.key": b"key",
    "col_one_to_agg_cert_request.zip": b"zip",
}


def _one_error_line(proc: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fx: error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture(scope="module")
def initialized(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A numpy/digits workspace after `fx plan initialize -a localhost`."""
    from tests.conftest import run_fx

    root = tmp_path_factory.mktemp("flow")
    created = run_fx(["workspace", "create", "--prefix", "ws", "--template", "numpy/digits"], cwd=root)
    assert str(root / "ws") in created.stdout
    workspace = root / "ws"
    run_fx(["plan", "initialize", "-a", "localhost"], cwd=workspace)
    assert (workspace / "save" / "init.pbuf").is_file()
    return workspace


def test_print_and_validate(initialized: Path, fx: Fx) -> None:
    printed = fx(["plan", "print"], cwd=initialized).stdout
    assert "src.taskrunner.DigitsSoftmaxRunner" in printed and "localhost" in printed
    fx(["plan", "validate"], cwd=initialized)


def test_model_save_matches_the_snapshot(initialized: Path, fx: Fx) -> None:
    from openfl_cli.tensors.snapshot import load_snapshot

    done = fx(["model", "save", "-i", "save/init.pbuf", "-o", "model.npz"], cwd=initialized)
    assert "model.npz" in done.stdout
    tensors = load_snapshot(initialized / "save" / "init.pbuf").tensors
    with np.load(initialized / "model.npz", allow_pickle=False) as saved:
        assert sorted(saved.files) == sorted(tensors) == ["W", "b"]
        for name, value in tensors.items():
            assert saved[name].dtype == value.dtype and np.array_equal(saved[name], value)


def test_export_then_import(initialized: Path, fx: Fx, tmp_path: Path) -> None:
    for name, content in SECRETS.items():
        (initialized / name).parent.mkdir(parents=True, exist_ok=True)
        (initialized / name).write_bytes(content)
    done = fx(["workspace", "export"], cwd=initialized)
    archive = initialized / "ws.zip"
    assert str(archive) in done.stdout
    with zipfile.ZipFile(archive) as handle:
        names = handle.namelist()
        assert handle.read("plan/data.yaml") == b"{}\n"
    assert {"plan/plan.yaml", "plan/cols.yaml", "src/taskrunner.py", "requirements.txt", "save/"} <= set(
        names
    )
    forbidden = (".key", ".crt", ".csr", ".pem", ".pbuf", ".zip", ".npz")
    assert not [n for n in names if n.endswith(forbidden)], names

    fx(["workspace", "import", "--archive", str(archive)], cwd=tmp_path)
    imported = tmp_path / "ws"
    assert (imported / "plan" / "plan.yaml").read_bytes() == (initialized / "plan" / "plan.yaml").read_bytes()
    assert not list((imported / "cert").iterdir()) and not list((imported / "save").iterdir())
    fx(["plan", "validate"], cwd=imported)  # the collaborator's copy is a valid workspace
    again = fx(["workspace", "import", "--archive", str(archive)], cwd=tmp_path, check=False)
    _one_error_line(again, "not empty")


def test_bad_input_is_one_line_and_exit_2(initialized: Path, fx: Fx, tmp_path: Path) -> None:
    unknown = fx(
        ["workspace", "create", "--prefix", "new", "--template", "no/such"], cwd=tmp_path, check=False
    )
    _one_error_line(unknown, "unknown template 'no/such'", "numpy/digits")
    assert not (tmp_path / "new").exists()

    traversal = fx(
        ["workspace", "create", "--prefix", "new", "--template", "../x"], cwd=tmp_path, check=False
    )
    _one_error_line(traversal, "invalid template name")

    taken = fx(["workspace", "create", "--prefix", str(initialized)], cwd=tmp_path, check=False)
    _one_error_line(taken, "not empty")

    missing = fx(["model", "save", "-i", "save/none.pbuf", "-o", "m.npz"], cwd=initialized, check=False)
    _one_error_line(missing, "save/none.pbuf not found")

    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as handle:
        handle.writestr("plan/plan.yaml", "{}\n")
        handle.writestr("../escaped.py", "print('owned')\n")
    refused = fx(["workspace", "import", "--archive", str(evil)], cwd=tmp_path, check=False)
    _one_error_line(refused, "outside")
    assert not (tmp_path.parent / "escaped.py").exists() and not (tmp_path / "evil").exists()


def test_help_lists_templates(fx: Fx, tmp_path: Path) -> None:
    assert "numpy/digits" in fx(["workspace", "create", "--help"], cwd=tmp_path).stdout


def test_requirements_travel_with_the_workspace(fx: Fx, tmp_path: Path) -> None:
    """Export pins this environment's packages and says so; import installs them with pip (offline:
    they are installed here already), or skips that with --no-install-requirements."""
    from importlib import metadata

    fx(["workspace", "create", "--prefix", "reqs"], cwd=tmp_path)
    exported = fx(["workspace", "export"], cwd=tmp_path / "reqs")
    assert "requirements.txt: " in exported.stdout and "left out: openfl-cli (fx itself)" in exported.stdout
    with zipfile.ZipFile(tmp_path / "reqs" / "reqs.zip") as handle:
        assert f"click=={metadata.version('click')}" in handle.read("requirements.txt").decode().splitlines()

    offline = {"PIP_NO_INDEX": "1"}
    (tmp_path / "a").mkdir()
    installed = fx(
        ["workspace", "import", "-a", str(tmp_path / "reqs" / "reqs.zip")], cwd=tmp_path / "a", env=offline
    )
    assert (
        "Installing the requirements of" in installed.stdout
        and "Installed the requirements" in installed.stdout
    )
    (tmp_path / "b").mkdir()
    skipped = fx(
        ["workspace", "import", "-a", str(tmp_path / "reqs" / "reqs.zip"), "--no-install-requirements"],
        cwd=tmp_path / "b",
        env=offline,
    )
    assert "Not installing its requirements" in skipped.stdout and "Installing" not in skipped.stdout


def test_dockerize_without_an_engine_then_sign_and_verify(fx: Fx, tmp_path: Path) -> None:
    """No Docker engine on these machines: the contexts are written, the commands printed, and a tarball
    saved elsewhere is signed by the aggregator and checked; a changed one is refused."""
    fx(["workspace", "create", "--prefix", "img"], cwd=tmp_path)
    workspace = tmp_path / "img"
    fx(["workspace", "certify"], cwd=workspace)
    fx(["aggregator", "generate-cert-request", "--fqdn", "localhost"], cwd=workspace)
    fx(["aggregator", "certify", "--fqdn", "localhost", "-s"], cwd=workspace)
    (workspace / "save" / "init.pbuf").write_bytes(b"weights")

    no_docker = {"PATH": str(tmp_path / "empty")}  # fx runs as `python -m openfl_cli`: it needs no PATH
    done = fx(["workspace", "dockerize", "--save"], cwd=workspace, env=no_docker)
    assert "No Docker engine answers here" in done.stdout and "docker save -o img.tar img" in done.stdout
    context = workspace / "build" / "image"
    assert (context / "base" / "Dockerfile.base").is_file() and (
        context / "workspace" / "Dockerfile"
    ).is_file()
    leaked = [p for p in (context / "workspace").rglob("*") if p.suffix in (".key", ".crt", ".csr", ".pbuf")]
    assert not leaked

    (workspace / "img.tar").write_bytes(b"what docker save wrote" * 1000)
    signed = fx(["workspace", "sign-image", "img.tar"], cwd=workspace)
    assert "as aggregator localhost" in signed.stdout
    checked = fx(["workspace", "verify-image", "img.tar"], cwd=workspace)
    assert "signature valid; signed by aggregator localhost" in checked.stdout
    (workspace / "img.tar").write_bytes(b"what docker save wrote" * 999 + b"something else!!!!!!!")
    refused = fx(["workspace", "verify-image", "img.tar"], cwd=workspace, check=False)
    _one_error_line(refused, "altered after signing")
