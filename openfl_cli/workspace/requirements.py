"""The `requirements.txt` an export ships: the packages of this environment, pinned, and installing it.

What `pip freeze` would write, read from `importlib.metadata` (no subprocess), less what another node
cannot install from a package index: `fx` itself (every node already runs it), editable installs and
packages installed from a local folder. A package installed from a local wheel or sdist is pinned by
its version; one installed from a VCS or a remote URL keeps that URL.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from openfl_cli.errors import FxError

PROJECT = "openfl-cli"
# what `pip freeze` leaves out too: the installers themselves
INSTALLERS = frozenset({"pip", "setuptools", "wheel", "distribute"})
DECLARED_HEADER = "# required by the workspace's requirements.txt, not installed where it was exported\n"
HEADER = "# the packages of the environment `fx workspace export` ran in (fx itself excluded)\n"


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class Skipped:
    name: str
    reason: str


@dataclass(frozen=True)
class Requirements:
    """The lines of a requirements file, and the installed packages left out with why."""

    lines: list[str]
    skipped: list[Skipped] = field(default_factory=list)
    # lines of the workspace's own requirements.txt that no installed package pins
    declared: list[str] = field(default_factory=list)

    def text(self) -> str:
        text = HEADER + "".join(f"{line}\n" for line in self.lines)
        if self.declared:
            text += DECLARED_HEADER + "".join(f"{line}\n" for line in self.declared)
        return text

    def summary(self) -> str:
        """One line for the user: how many packages were pinned, what was left out, what needs care."""
        left_out = ", ".join(f"{item.name} ({item.reason})" for item in self.skipped)
        declared = f", {len(self.declared)} more that the workspace requires" if self.declared else ""
        local = ", ".join(self.local_builds())
        return (
            f"{len(self.lines)} packages pinned{declared}"
            + (f"; left out: {left_out}" if left_out else "")
            + (
                f"; local builds, found only on their own index (add --extra-index-url): {local}"
                if local
                else ""
            )
        )

    def local_builds(self) -> list[str]:
        """Pins with a local version label (`torch==2.3.0+cpu`): no public index serves them as such."""
        return [line for line in self.lines if "==" in line and "+" in line.split("==", 1)[1]]


def canonical_name(name: str) -> str:
    """PEP 503's normalized form: `Foo_Bar.baz` and `foo-bar-baz` are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def site_folders() -> list[str]:
    """The environment's package folders on sys.path, in its order: what pip installed. Folders that
    packages put on sys.path themselves (Ray's `thirdparty_files` with its vendored colorama and psutil)
    hold nothing another node could install by name."""
    import site
    import sysconfig

    installed = {*site.getsitepackages(), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    if site.ENABLE_USER_SITE:
        installed.add(site.getusersitepackages())
    resolved = {str(Path(folder).resolve()) for folder in installed}
    return [entry for entry in sys.path if entry and str(Path(entry).resolve()) in resolved]


def environment_requirements(
    distributions: Iterable[metadata.Distribution] | None = None,
) -> Requirements:
    """The pinned requirements of the packages installed in this interpreter's environment."""
    lines: list[str] = []
    skipped: list[Skipped] = []
    seen: set[str] = set()
    found = metadata.distributions(path=site_folders()) if distributions is None else distributions
    for distribution in found:
        name = distribution.metadata["Name"]
        if not name or canonical_name(name) in seen:
            continue  # the first on sys.path is the one that imports
        seen.add(canonical_name(name))
        if canonical_name(name) in INSTALLERS:
            continue
        if canonical_name(name) == PROJECT:
            skipped.append(Skipped(name, "fx itself"))
            continue
        line, reason = _requirement_line(
            name, distribution.version, distribution.read_text("direct_url.json")
        )
        if line is None:
            skipped.append(Skipped(name, reason))
        else:
            lines.append(line)
    return Requirements(sorted(lines, key=str.lower), skipped)


def with_declared(requirements: Requirements, workspace_file: Path) -> Requirements:
    """`requirements` plus the lines of the workspace's own file for packages it does not pin."""
    if not workspace_file.is_file():
        return requirements
    pinned = {canonical_name(found.group(0)) for line in requirements.lines if (found := _NAME.match(line))}
    declared = []
    for raw in workspace_file.read_text(encoding="utf-8").splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        name = _NAME.match(line)
        if name is None or canonical_name(name.group(0)) not in pinned:
            declared.append(line)
    return Requirements(requirements.lines, requirements.skipped, declared)


def _requirement_line(name: str, version: str, direct_url: str | None) -> tuple[str | None, str]:
    """The line for one package, or None and the reason it cannot be installed elsewhere."""
    if not direct_url:
        return f"{name}=={version}", ""
    try:
        origin = json.loads(direct_url)
        url = str(origin["url"])
    except (ValueError, KeyError, TypeError):
        return f"{name}=={version}", ""
    if "dir_info" in origin:
        editable = bool(origin["dir_info"].get("editable"))
        return None, "an editable install" if editable else "installed from a local folder"
    if "vcs_info" in origin:
        vcs = origin["vcs_info"]
        revision = vcs.get("commit_id") or vcs.get("requested_revision")
        return f"{name} @ {vcs.get('vcs', 'git')}+{url}" + (f"@{revision}" if revision else ""), ""
    if url.startswith("file:"):
        return f"{name}=={version}", ""  # a local wheel or sdist: its release on the index
    return f"{name} @ {url}", ""


def install_command(requirements: Path) -> list[str]:
    """`pip install -r FILE` with this interpreter: the environment `fx` runs in."""
    return [sys.executable, "-m", "pip", "install", "-r", str(requirements)]


def has_requirements(requirements: Path) -> bool:
    """True when the file names at least one requirement (comments and blank lines do not count)."""
    if not requirements.is_file():
        return False
    text = requirements.read_text(encoding="utf-8")
    return any(line.strip() and not line.lstrip().startswith("#") for line in text.splitlines())


def install_requirements(requirements: Path, echo: Callable[[str], None] = print) -> bool:
    """Install `requirements` into this environment, printing each step; False when it names nothing.

    pip's progress goes to the terminal as it comes; its errors are gathered so that a failure ends
    in one line naming the file and pip's own reason.
    """
    if not has_requirements(requirements):
        echo(f"{requirements} names no packages: nothing to install")
        return False
    command = install_command(requirements)
    echo(f"Installing the requirements of {requirements}: {' '.join(command)}")
    done = subprocess.run(command, check=False, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise FxError(
            f"installing the requirements of {requirements} failed (pip exited with {done.returncode}"
            f"{': ' + reason if (reason := _pip_reason(done.stderr)) else ''}); the workspace is in place, "
            f"fix the file and run `{' '.join(command)}`"
        )
    for line in (done.stderr or "").splitlines():
        if line.strip():
            echo(line)  # pip's warnings, kept visible
    echo(f"Installed the requirements of {requirements}")
    return True


def _pip_reason(stderr: str | None) -> str:
    """pip's first `ERROR:` line, which says what went wrong, on one line."""
    lines = [line.strip() for line in (stderr or "").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR:")]
    chosen = errors[0] if errors else (lines[-1] if lines else "")
    return chosen.removeprefix("ERROR:").strip()[:300]
