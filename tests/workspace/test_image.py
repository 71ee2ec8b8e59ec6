"""`fx workspace dockerize` without a Docker engine: the contexts, the Dockerfiles, and their install
steps run in a scratch virtual environment; with a stand-in `docker`, the build, save and signature."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from openfl_cli.errors import UsageError
from openfl_cli.pki.ca import create_authority
from openfl_cli.pki.requests import aggregator_request
from openfl_cli.pki.signing import certify_aggregator
from openfl_cli.workspace.dockerize import dockerize
from openfl_cli.workspace.image import BASE_SOURCES, prepare_image, source_tree
from openfl_cli.workspace.image_signature import verify_image
from tests.workspace.cli_run import fx_in_process

SECRET_SUFFIXES = (".key", ".crt", ".csr", ".pem", ".pbuf", ".db", ".zip", ".tar", ".sig", ".log", ".npy")
PEM_MARKERS = (b"PRIVATE KEY", b"BEGIN CERTIFICATE", b"CERTIFICATE REQUEST")


@pytest.fixture
def certified(workspace: Path) -> Path:
    """A digits workspace on the aggregator's node after the certificate flow, with a node's leftovers."""
    create_authority(workspace)
    aggregator_request(workspace, "localhost")
    certify_aggregator(workspace, "localhost")
    planted = {
        "save/init.pbuf": b"weights",
        "logs/run.log": b"log",
        "logs/metrics.jsonl": b"{}",
        "local_state/state.db": b"db",
        "local_state/aggregator.lock": b"1",
        "data/shard.npy": b"data",
        "src/stray.key": b"-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n",
        "src/stray.crt": b"crt",
        "src/model.pbuf": b"snapshot",
        "src/.env": b"TOKEN=secret",
        "ws.zip": b"zip",
        "ws.tar": b"tar",
        "col_one_to_agg_cert_request.zip": b"zip",
    }
    for name, content in planted.items():
        (workspace / name).parent.mkdir(parents=True, exist_ok=True)
        (workspace / name).write_bytes(content)
    (workspace / "plan" / "data.yaml").write_text("one: /very/private/path\n")
    return workspace


def _files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file())


def test_the_workspace_context_holds_the_plan_code_and_requirements_only(certified: Path) -> None:
    build = prepare_image(certified, requirements=b"click==8.1.7\n")
    context = build.workspace_context
    names = [path.relative_to(context).as_posix() for path in _files(context)]
    assert names == [
        "Dockerfile",
        "requirements.txt",
        "workspace/plan/cols.yaml",
        "workspace/plan/data.yaml",
        "workspace/plan/plan.yaml",
        "workspace/requirements.txt",
        "workspace/src/__init__.py",
        "workspace/src/dataloader.py",
        "workspace/src/taskrunner.py",
    ]
    for folder in ("save", "logs", "local_state", "data", "cert"):
        assert (context / "workspace" / folder).is_dir() and not list(
            (context / "workspace" / folder).iterdir()
        )
    assert (context / "workspace" / "plan" / "data.yaml").read_text() == "{}\n"  # this node's paths stay here
    assert (context / "requirements.txt").read_bytes() == b"click==8.1.7\n"
    for path in _files(context):
        assert not any(marker in path.read_bytes() for marker in PEM_MARKERS), path


def test_the_base_context_is_the_package_and_nothing_of_the_workspace(certified: Path) -> None:
    build = prepare_image(certified, requirements=b"")
    assert build.base_context is not None
    dockerfile = (build.base_context / "Dockerfile.base").read_text()
    copied = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("COPY ")]
    assert copied == ["pyproject.toml", "openfl_cli", "plan_defaults", "workspace_templates", "proto"]
    for name in (*copied, "README.md"):
        assert (build.base_context / name).exists(), name
    assert set(BASE_SOURCES) == {*copied, "README.md"}
    files = _files(build.base_context)
    assert not [
        p for p in files if p.suffix in SECRET_SUFFIXES or p.suffix == ".pyc" or "__pycache__" in p.parts
    ]
    assert not [
        p
        for p in files
        if p.name in ("init.pbuf", "state.db", "data.yaml") and "workspace_templates" not in p.parts
    ]


def test_both_images_run_as_a_non_root_user(certified: Path) -> None:
    build = prepare_image(certified, requirements=b"")
    assert build.base_context is not None
    for dockerfile in (build.base_context / "Dockerfile.base", build.workspace_context / "Dockerfile"):
        users = re.findall(r"^USER (\S+)$", dockerfile.read_text(), flags=re.MULTILINE)
        assert users and users[-1] == "fx", dockerfile
    base = (build.base_context / "Dockerfile.base").read_text()
    assert (
        "--uid 10001" in base
        and "ARG PYTHON_VERSION" in base
        and "FROM python:${PYTHON_VERSION}-slim" in base
    )
    workspace = (build.workspace_context / "Dockerfile").read_text()
    assert "FROM ${BASE_IMAGE}" in workspace and "ARG BASE_IMAGE=fx-base:" in workspace
    assert "COPY requirements.txt /opt/fx/workspace-requirements.txt" in workspace
    assert "python -m pip install --no-cache-dir -r /opt/fx/workspace-requirements.txt" in workspace
    writable = "/workspace/save /workspace/logs /workspace/local_state /workspace/data"
    assert f"chown fx:fx {writable}" in workspace and f"chmod 1777 {writable}" in workspace


def test_the_repository_dockerfile_is_the_one_shipped() -> None:
    top = source_tree()
    assert top is not None and (top / "Dockerfile.base").is_file()


def test_install_steps_give_a_working_fx_in_a_scratch_environment(certified: Path, tmp_path: Path) -> None:
    """What the Dockerfiles run, offline: the package from the base context, then the requirements."""
    build = prepare_image(certified)
    assert build.base_context is not None
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # the dependencies (and pip, hatchling) come from this environment, read-only; no network
    Path(purelib, "zz_host_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # what earlier tests left in the environment (PYTHONPATH, pip settings) must not reach the scratch one
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("PYTHON", "PIP_", "VIRTUAL_ENV", "CONDA"))
    }
    env = {**inherited, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    pip = [str(python), "-m", "pip", "install", "--no-build-isolation"]
    for step in (
        [*pip, "--no-deps", "--ignore-installed", str(build.base_context)],
        [*pip, "-r", str(build.workspace_context / "requirements.txt")],
    ):
        ran = subprocess.run(step, env=env, cwd=tmp_path, capture_output=True, text=True)
        assert ran.returncode == 0, f"{' '.join(step)}\n{ran.stdout[-3000:]}\n{ran.stderr[-3000:]}"

    home = build.workspace_context / "workspace"
    fx = str(venv / "bin" / "fx")
    helped = subprocess.run([fx, "--help"], cwd=home, capture_output=True, text=True, env=env, check=True)
    assert "workspace" in helped.stdout and "aggregator" in helped.stdout
    where = subprocess.run(
        [str(python), "-c", "import openfl_cli; print(openfl_cli.__file__)"],
        cwd=home,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(venv)), where  # the installed copy, not this source tree
    valid = subprocess.run([fx, "plan", "validate"], cwd=home, capture_output=True, text=True, env=env)
    assert valid.returncode == 0 and "plan OK" in valid.stdout, valid.stderr


def test_without_an_engine_it_prints_the_commands(
    certified: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(certified / "no-docker-here"))
    monkeypatch.chdir(certified)
    code, out, err = fx_in_process(["workspace", "dockerize", "--save"], capsys)
    assert code == 0, err
    assert "No Docker engine answers here" in out and "nothing was built" in out
    lines = [line.strip() for line in out.splitlines()]
    assert (
        "docker build -t fx-base:0.1.0 -f build/image/base/Dockerfile.base --build-arg "
        f"PYTHON_VERSION={sys.version_info.major}.{sys.version_info.minor} build/image/base"
    ) in lines
    assert "docker build -t ws --build-arg BASE_IMAGE=fx-base:0.1.0 build/image/workspace" in lines
    assert "docker save -o ws.tar ws" in lines
    assert out.rstrip().endswith("fx workspace sign-image ws.tar")
    assert (certified / "build" / "image" / "workspace" / "Dockerfile").is_file()


def test_contexts_are_replaced_but_never_a_foreign_folder(certified: Path, tmp_path: Path) -> None:
    first = prepare_image(certified, requirements=b"a\n")
    second = prepare_image(certified, requirements=b"b\n")
    assert (second.workspace_context / "requirements.txt").read_bytes() == b"b\n"
    assert first.workspace_context == second.workspace_context
    assert not [p for p in (certified / "build").iterdir() if p.name != "image"]  # no staging left
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    with pytest.raises(UsageError, match="was not written by fx workspace dockerize"):
        prepare_image(certified, context=mine, requirements=b"")
    assert (mine / "notes.txt").read_text() == "keep"
    with pytest.raises(UsageError, match="inside src/ it would ship with the workspace"):
        prepare_image(certified, context=certified / "src" / "image", requirements=b"")
    with pytest.raises(UsageError, match="--tag 'Bad Name'"):
        prepare_image(certified, tag="Bad Name", requirements=b"")


def test_with_an_engine_it_builds_saves_and_signs(
    certified: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "docker.log"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "docker"
    fake.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> "{log}"\n'
        'case "$1" in\n'
        "  info) echo 27.0.0 ;;\n"
        "  save) printf 'layers of the image' > \"$3\" ;;\n"
        "esac\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    said: list[str] = []
    done = dockerize(certified, save=True, echo=said.append)
    assert done.built and done.signed
    calls = log.read_text().splitlines()
    assert calls[0].startswith("info")
    assert calls[1].startswith("build -t fx-base:0.1.0 -f ") and calls[1].endswith("build/image/base")
    assert calls[2].startswith("build -t ws --build-arg BASE_IMAGE=fx-base:0.1.0 ")
    assert calls[3] == f"save -o {certified / 'ws.tar'} ws"
    assert (certified / "ws.tar").read_bytes() == b"layers of the image"
    assert "signed by aggregator localhost" in said[-1]
    assert verify_image(certified / "ws.tar", certified).signer == "localhost"


def test_an_engine_without_a_signer_fails_before_building(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("openfl_cli.workspace.docker.run_docker", lambda command: pytest.fail("built"))
    with pytest.raises(UsageError, match="no certified key to sign with"):
        dockerize(workspace, save=True, engine=True, echo=lambda _: None)


def test_a_build_from_the_checkout_sends_only_the_base_sources() -> None:
    top = source_tree()
    assert top is not None
    lines = [line for line in (top / ".dockerignore").read_text().splitlines() if line and line[0] != "#"]
    assert lines[0] == "*"
    assert sorted(line[1:] for line in lines if line.startswith("!")) == sorted(BASE_SOURCES)
