"""`fx workspace dockerize`: the build contexts of the base image and of a workspace image.

The base image is the `fx` package alone (`Dockerfile.base` at the top of the source tree). The
workspace image adds what `fx workspace export` ships, and nothing else: the plan, the code and the
requirements (installed), with `plan/data.yaml` empty. Keys, certificates, snapshots, logs and local
state never enter a context; certificates and data are mounted when a container runs.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from openfl_cli import __version__
from openfl_cli.errors import UsageError
from openfl_cli.workspace.layout import require_workspace

BASE_DOCKERFILE = "Dockerfile.base"
# what Dockerfile.base copies, from the top of the source tree
BASE_SOURCES = ("pyproject.toml", "README.md", "openfl_cli", "plan_defaults", "workspace_templates", "proto")
BASE_IMAGE = f"fx-base:{__version__}"
CONTEXT_DIR = "build/image"
MARKER = ".fx-image-context"  # only a folder that holds it is replaced
WORKSPACE_HOME = "/workspace"
RUN_USER = "fx"
# folders the participant writes while it runs; everything else of the workspace stays root's, read-only
WRITABLE_DIRS = ("save", "logs", "local_state", "data")
_NOT_COPIED = shutil.ignore_patterns("__pycache__", "*.pyc", ".*", "_bundled")
_TAG = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?")


@dataclass(frozen=True)
class ImageBuild:
    """The contexts written and the commands that turn them into images (and a signed tarball)."""

    workspace: Path
    tag: str
    base_image: str
    base_context: Path | None  # None: the base image is given, not built
    workspace_context: Path
    tarball: Path
    signature: Path

    @property
    def base_command(self) -> list[str] | None:
        if self.base_context is None:
            return None
        python = f"{sys.version_info.major}.{sys.version_info.minor}"  # the pins of requirements.txt fit it
        return [
            "docker", "build", "-t", self.base_image,
            "-f", str(self.base_context / BASE_DOCKERFILE),
            "--build-arg", f"PYTHON_VERSION={python}",
            str(self.base_context),
        ]  # fmt: skip

    @property
    def workspace_command(self) -> list[str]:
        return [
            "docker", "build", "-t", self.tag,
            "--build-arg", f"BASE_IMAGE={self.base_image}",
            str(self.workspace_context),
        ]  # fmt: skip

    @property
    def save_command(self) -> list[str]:
        return ["docker", "save", "-o", str(self.tarball), self.tag]

    @property
    def sign_command(self) -> list[str]:
        return ["fx", "workspace", "sign-image", str(self.tarball)]

    def build_commands(self) -> list[list[str]]:
        return [command for command in (self.base_command, self.workspace_command) if command]

    def shown(self, command: Sequence[str]) -> str:
        """`command` as a shell line, its paths relative to the workspace (where it is to be run)."""
        prefix = f"{self.workspace}{os.sep}"
        return shell_line([part.removeprefix(prefix) for part in command])


def default_tag(workspace: Path) -> str:
    """The workspace folder's name as an image name (lower case; other characters become `-`)."""
    name = re.sub(r"[^a-z0-9._-]+", "-", workspace.name.lower()).strip("._-")
    return name or "fx-workspace"


def check_tag(tag: str) -> str:
    if not _TAG.fullmatch(tag):
        raise UsageError(f"--tag {tag!r}: expected an image name like `my-federation` or `repo/name:1.0`")
    return tag


def source_tree() -> Path | None:
    """The top of the source tree `fx` runs from (it has `Dockerfile.base`), or None for a wheel."""
    import openfl_cli

    top = Path(openfl_cli.__file__).resolve().parent.parent
    if all((top / name).exists() for name in (BASE_DOCKERFILE, *BASE_SOURCES)):
        return top
    return None


def prepare_image(
    workspace: str | Path = ".",
    *,
    tag: str | None = None,
    base_image: str | None = None,
    context: str | Path | None = None,
    requirements: bytes | None = None,
) -> ImageBuild:
    """Write the build contexts (`<workspace>/build/image/{base,workspace}` by default).

    With `base_image` that image is built upon and no base context is written; otherwise the base
    context is the package's source tree and its `Dockerfile.base`. `requirements` is the content of
    the image's `requirements.txt` (by default what `fx workspace export` would ship).
    """
    root = require_workspace(workspace)
    tag = check_tag(tag or default_tag(root))
    folder = Path(context).expanduser().absolute() if context else root / CONTEXT_DIR
    _check_outside_shared(root, folder)
    source = None
    if base_image is None:
        source = source_tree()
        if source is None:
            raise UsageError(
                f"{BASE_DOCKERFILE} not found: this fx is not installed from its source tree; "
                "pass --base-image IMAGE to build on an existing base image"
            )
    if requirements is None:
        from openfl_cli.workspace.export import shipped_requirements

        requirements = shipped_requirements(root).text().encode()
    staging = _staging(folder)
    try:
        if source is not None:
            write_base_context(source, staging / "base")
        write_workspace_context(root, staging / "workspace", requirements)
        _publish(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    name = root.name
    return ImageBuild(
        workspace=root,
        tag=tag,
        base_image=base_image or BASE_IMAGE,
        base_context=folder / "base" if source is not None else None,
        workspace_context=folder / "workspace",
        tarball=root / f"{name}.tar",
        signature=root / f"{name}.tar.sig",
    )


def write_base_context(source: Path, target: Path) -> None:
    """The package's sources that Dockerfile.base copies, and the Dockerfile itself."""
    target.mkdir(parents=True)
    for name in BASE_SOURCES:
        path = source / name
        if path.is_dir():
            shutil.copytree(path, target / name, ignore=_NOT_COPIED, symlinks=False)
        else:
            shutil.copy2(path, target / name)
    shutil.copy2(source / BASE_DOCKERFILE, target / BASE_DOCKERFILE)


def write_workspace_context(root: Path, target: Path, requirements: bytes) -> None:
    """`workspace/` (exactly the export's entries), `requirements.txt` and the `Dockerfile`."""
    from openfl_cli.workspace.export import export_entries

    files = target / "workspace"
    files.mkdir(parents=True)
    for name, content in export_entries(root, requirements):
        path = files / name
        if name.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copyfile(content, path)
        else:
            path.write_bytes(content)
    (target / "requirements.txt").write_bytes(requirements)
    (target / "Dockerfile").write_text(workspace_dockerfile(root.name), encoding="utf-8")


def workspace_dockerfile(name: str) -> str:
    """The workspace image: requirements installed as root, the workspace read-only, run as `fx`."""
    writable = " ".join(f"{WORKSPACE_HOME}/{folder}" for folder in WRITABLE_DIRS)
    return f"""\
# The image of workspace {name}, written by `fx workspace dockerize` (fx {__version__}).
# It holds the plan, the code and the requirements; never keys, certificates, snapshots, logs or local
# state. Mount the certificates (read-only) and this node's data when a container runs.
ARG BASE_IMAGE={BASE_IMAGE}
FROM ${{BASE_IMAGE}}

USER root
COPY requirements.txt /opt/fx/workspace-requirements.txt
RUN python -m pip install --no-cache-dir -r /opt/fx/workspace-requirements.txt \\
    && fx --version
# the code and the plan belong to root: the participant reads them and cannot change them
COPY workspace/ {WORKSPACE_HOME}/
# what it writes: its own by default, and writable by a `--user` that owns the mounted keys
RUN chmod -R a+rX,go-w {WORKSPACE_HOME} \\
    && chown {RUN_USER}:{RUN_USER} {writable} \\
    && chmod 1777 {writable}

USER {RUN_USER}
WORKDIR {WORKSPACE_HOME}
LABEL org.opencontainers.image.title="{name}" io.fx.workspace="{name}"
CMD ["fx", "--help"]
"""


def _check_outside_shared(root: Path, folder: Path) -> None:
    """A context inside `plan/` or `src/` would be exported, and copied into the next image."""
    from openfl_cli.workspace.export import SHARED_DIRS

    for shared in SHARED_DIRS:
        if folder == root / shared or (root / shared) in folder.parents:
            raise UsageError(
                f"--context {folder}: inside {shared}/ it would ship with the workspace; choose another"
            )


def _staging(folder: Path) -> Path:
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise UsageError(f"{folder} exists and is not a folder; choose another --context")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / MARKER).is_file():
        raise UsageError(
            f"{folder} exists and was not written by fx workspace dockerize; choose another --context"
        )
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    (staging / MARKER).write_text("written by fx workspace dockerize; replaced whole on the next run\n")
    return staging


def _publish(staging: Path, folder: Path) -> None:
    staging.chmod(0o755)  # mkdtemp makes it 0700
    if folder.exists():
        old = folder.with_name(f".{folder.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(folder, old)
        os.replace(staging, folder)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, folder)


def shell_line(command: Sequence[str]) -> str:
    """A command as one line to paste into a shell."""
    import shlex

    return " ".join(shlex.quote(part) for part in command)
