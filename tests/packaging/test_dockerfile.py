"""Dockerfile.base cannot be built here (no engine): check what can be checked by reading it."""

from __future__ import annotations

import re
import shlex

from tests.conftest import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile.base"


def _instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def test_every_copy_source_exists() -> None:
    copies = [rest for keyword, rest in _instructions() if keyword == "COPY"]
    assert copies, "Dockerfile.base copies nothing"
    for rest in copies:
        *sources, _destination = shlex.split(rest)
        for source in sources:
            assert (REPO_ROOT / source).exists(), f"COPY source {source} is missing from the repository"


def test_bundled_folders_are_copied_before_install() -> None:
    """The wheel force-includes these folders: the build fails without them in the context."""
    steps = _instructions()
    copied = " ".join(rest for keyword, rest in steps if keyword == "COPY")
    for folder in ("openfl_cli", "plan_defaults", "workspace_templates", "proto", "pyproject.toml"):
        assert folder in copied, f"{folder} is not copied into the image"
    install_at = next(i for i, (k, rest) in enumerate(steps) if k == "RUN" and "pip install" in rest)
    last_copy = max(i for i, (k, _) in enumerate(steps) if k == "COPY")
    assert last_copy < install_at


def test_runs_as_unprivileged_user_with_pinned_python() -> None:
    steps = _instructions()
    base = next(rest for keyword, rest in steps if keyword == "FROM")
    # the Python version is a build argument (dockerize passes the host's); its default is pinned
    defaults = dict(
        rest.split("=", 1) for keyword, rest in steps if keyword == "ARG" and "=" in rest
    )
    base = re.sub(r"\$\{(\w+)\}", lambda found: defaults.get(found.group(1), found.group(0)), base)
    assert re.fullmatch(r"python:3\.(10|11|12)-slim", base), base
    users = [rest for keyword, rest in steps if keyword == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image must not run fx as root"


def test_extras_named_in_build_arg_exist_in_pyproject() -> None:
    import tomllib

    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    header = DOCKERFILE.read_text()
    for extra in re.findall(r"FX_EXTRAS=(\w+)", header):
        assert extra in extras, f"Dockerfile.base documents extra {extra!r} that pyproject.toml lacks"
