"""requirements.txt: what export pins from this environment, what import installs with pip (offline)."""

from __future__ import annotations

import json
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from openfl_cli.errors import FxError
from openfl_cli.workspace.export import export_workspace
from openfl_cli.workspace.requirements import (
    environment_requirements,
    has_requirements,
    install_requirements,
    with_declared,
)
from tests.workspace.cli_run import fx_in_process


class FakeDistribution(metadata.Distribution):
    """A distribution with a name, a version and optionally a `direct_url.json`."""

    def __init__(self, name: str, version: str, direct_url: dict | None = None) -> None:
        self._files = {"METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"}
        if direct_url is not None:
            self._files["direct_url.json"] = json.dumps(direct_url)

    def read_text(self, filename: str) -> str | None:
        return self._files.get(filename)

    def locate_file(self, path: str | Path) -> Path:  # pragma: no cover - not used
        return Path(path)


def test_pins_what_an_index_can_install_and_says_what_it_left_out() -> None:
    found = environment_requirements(
        [
            FakeDistribution("numpy", "2.1.0"),
            FakeDistribution("numpy", "1.0.0"),  # shadowed by the first on sys.path
            FakeDistribution("openfl-cli", "0.1.0", {"url": "file:///src", "dir_info": {"editable": True}}),
            FakeDistribution(
                "mylib", "0.3", {"url": "file:///home/me/mylib", "dir_info": {"editable": True}}
            ),
            FakeDistribution("vendored", "1.2", {"url": "file:///opt/vendored", "dir_info": {}}),
            FakeDistribution(
                "fromwheel", "4.5", {"url": "file:///tmp/fromwheel-4.5-py3-none-any.whl", "archive_info": {}}
            ),
            FakeDistribution(
                "gitlib",
                "0.1",
                {"url": "https://example.org/gitlib.git", "vcs_info": {"vcs": "git", "commit_id": "abc123"}},
            ),
            FakeDistribution(
                "remote", "2.0", {"url": "https://example.org/remote-2.0.tar.gz", "archive_info": {}}
            ),
            FakeDistribution("pip", "24.0"),
            FakeDistribution("setuptools", "70.0"),
        ]
    )
    assert found.lines == [
        "fromwheel==4.5",
        "gitlib @ git+https://example.org/gitlib.git@abc123",
        "numpy==2.1.0",
        "remote @ https://example.org/remote-2.0.tar.gz",
    ]
    assert [(item.name, item.reason) for item in found.skipped] == [
        ("openfl-cli", "fx itself"),
        ("mylib", "an editable install"),
        ("vendored", "installed from a local folder"),
    ]
    assert found.summary() == (
        "4 packages pinned; left out: openfl-cli (fx itself), mylib (an editable install), "
        "vendored (installed from a local folder)"
    )


def test_local_builds_are_named() -> None:
    found = environment_requirements([FakeDistribution("torch", "2.3.0+cpu"), FakeDistribution("six", "1.0")])
    assert found.lines == ["six==1.0", "torch==2.3.0+cpu"]
    assert found.summary().endswith(
        "local builds, found only on their own index (add --extra-index-url): torch==2.3.0+cpu"
    )


def test_the_real_environment_is_pinned_withoutfx_in_process() -> None:
    text = environment_requirements().text()
    assert f"click=={metadata.version('click')}\n" in text
    assert "openfl" not in text.lower().replace("# the packages", "")


def test_the_workspace_adds_what_the_environment_does_not_pin(tmp_path: Path) -> None:
    own = tmp_path / "requirements.txt"
    own.write_text("# ours\nnumpy>=1.26\nNot_Installed_Here>=3  # a comment\n\n--extra-index-url https://x\n")
    merged = with_declared(environment_requirements([FakeDistribution("numpy", "2.1.0")]), own)
    assert merged.lines == ["numpy==2.1.0"]
    assert merged.declared == ["Not_Installed_Here>=3", "--extra-index-url https://x"]
    assert merged.text().splitlines()[1:] == [
        "numpy==2.1.0",
        "# required by the workspace's requirements.txt, not installed where it was exported",
        "Not_Installed_Here>=3",
        "--extra-index-url https://x",
    ]


def test_export_writes_the_environment_into_the_archive(workspace: Path) -> None:
    (workspace / "requirements.txt").write_text("numpy>=1.26\n")
    archive = export_workspace(workspace)
    with zipfile.ZipFile(archive) as handle:
        shipped = handle.read("requirements.txt").decode()
    assert f"click=={metadata.version('click')}\n" in shipped
    assert f"numpy=={metadata.version('numpy')}\n" in shipped and "numpy>=1.26" not in shipped
    assert "openfl-cli" not in shipped and "openfl_cli" not in shipped
    assert (workspace / "requirements.txt").read_text() == "numpy>=1.26\n"  # the workspace is not changed


def test_import_runs_pip_on_an_installed_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # never the network: the package is already here
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"# pinned\nclick=={metadata.version('click')}\n")
    said: list[str] = []
    assert install_requirements(requirements, said.append) is True
    assert said[0].startswith(f"Installing the requirements of {requirements}: ")
    assert " -m pip install -r " in said[0]
    assert said[-1] == f"Installed the requirements of {requirements}"


def test_a_failed_install_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("fx-no-such-package-anywhere==9.9.9\n")
    with pytest.raises(FxError) as raised:
        install_requirements(requirements, lambda _: None)
    message = str(raised.value)
    assert "\n" not in message and str(requirements) in message
    assert "pip exited with 1" in message and "fx-no-such-package-anywhere" in message


def test_import_command_installs_and_fails_in_one_line(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    archive = tmp_path / "ws.zip"
    with zipfile.ZipFile(export_workspace(workspace)) as source, zipfile.ZipFile(archive, "w") as target:
        for item in source.infolist():
            content = source.read(item)
            if item.filename == "requirements.txt":
                content = b"fx-no-such-package-anywhere==9.9.9\n"
            target.writestr(item, content)
    (tmp_path / "node").mkdir()
    monkeypatch.chdir(tmp_path / "node")
    code, out, err = fx_in_process(["workspace", "import", "--archive", str(archive)], capsys)
    assert code == 1, err
    assert err.count("\n") == 1 and err.startswith("fx: error: installing the requirements of "), err
    assert "Unpacked the workspace into" in out and "Installing the requirements" in out
    assert (tmp_path / "node" / "ws" / "plan" / "plan.yaml").is_file()  # the workspace stays for a retry


def test_nothing_to_install(tmp_path: Path) -> None:
    empty = tmp_path / "requirements.txt"
    empty.write_text("# only a comment\n\n")
    said: list[str] = []
    assert not has_requirements(empty) and install_requirements(empty, said.append) is False
    assert said == [f"{empty} names no packages: nothing to install"]


def test_packages_vendored_on_sys_path_are_not_pinned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ray puts its `thirdparty_files` (colorama, psutil) on sys.path when imported: not installable."""
    import sys

    vendored = tmp_path / "thirdparty_files"
    (vendored / "fx_vendored_only-1.0.dist-info").mkdir(parents=True)
    (vendored / "fx_vendored_only-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: fx-vendored-only\nVersion: 1.0\n"
    )
    monkeypatch.setattr(sys, "path", [str(vendored), *sys.path])
    from importlib import metadata

    assert any(d.metadata["Name"] == "fx-vendored-only" for d in metadata.distributions())
    lines = environment_requirements().lines
    assert not any(line.startswith("fx-vendored-only") for line in lines)
    assert any(line.startswith("numpy==") for line in lines)  # the environment's own packages still are
