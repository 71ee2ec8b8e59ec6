"""`fx workspace dockerize`: write the contexts, then build (and save and sign) where an engine runs.

Without a Docker engine the contexts are still written, and the commands to run on a machine that
has one are printed instead, with the `fx` command that signs the saved tarball afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from openfl_cli.workspace.image import ImageBuild, prepare_image, shell_line

Echo = Callable[[str], None]


@dataclass(frozen=True)
class Dockerized:
    build: ImageBuild
    built: bool  # False: no engine here, the commands were printed
    signed: bool


def dockerize(
    workspace: str | Path = ".",
    *,
    tag: str | None = None,
    base_image: str | None = None,
    context: str | Path | None = None,
    save: bool = False,
    certificate: str | Path | None = None,
    key: str | Path | None = None,
    engine: bool | None = None,
    echo: Echo = print,
) -> Dockerized:
    """Write the build contexts; with an engine (probed when `engine` is None) build the base and the
    workspace image, and with `save` write `<workspace>.tar` and its signature `<workspace>.tar.sig`."""
    from openfl_cli.workspace.docker import engine_running, run_docker
    from openfl_cli.workspace.export import shipped_requirements
    from openfl_cli.workspace.image_signature import default_signer, sign_image
    from openfl_cli.workspace.layout import require_workspace

    requirements = shipped_requirements(require_workspace(workspace))
    echo(f"requirements.txt of the image: {requirements.summary()}")
    build = prepare_image(
        workspace, tag=tag, base_image=base_image, context=context, requirements=requirements.text().encode()
    )
    if build.base_context is not None:
        echo(f"Wrote the base image's context {build.base_context} (Dockerfile.base and the fx sources)")
    else:
        echo(f"Building on the base image {build.base_image}")
    echo(
        f"Wrote the workspace image's context {build.workspace_context} (Dockerfile, requirements.txt, "
        "the workspace's plan and code; no keys, certificates, snapshots, logs or local state)"
    )
    if not (engine_running() if engine is None else engine):
        _print_commands(build, save, echo)
        return Dockerized(build, built=False, signed=False)
    if save and certificate is None:
        default_signer(build.workspace)  # no signer: refuse before a long build, not after it
    for command in build.build_commands():
        echo(f"Running: {shell_line(command)}")
        run_docker(command)
    echo(f"Built image {build.tag}")
    if not save:
        return Dockerized(build, built=True, signed=False)
    echo(f"Running: {shell_line(build.save_command)}")
    run_docker(build.save_command)
    signature_file, signed = sign_image(build.tarball, build.workspace, certificate=certificate, key=key)
    echo(f"Saved {build.tarball}; signed by {signed.role} {signed.signer}: {signature_file}")
    return Dockerized(build, built=True, signed=True)


def _print_commands(build: ImageBuild, save: bool, echo: Echo) -> None:
    echo("No Docker engine answers here (`docker info` failed); nothing was built.")
    context = build.shown([str(build.workspace_context.parent)])
    echo(f"Run these in this workspace's folder on a machine with Docker (only {context}/ is needed there):")
    for command in build.build_commands():
        echo(f"  {build.shown(command)}")
    if save:
        echo(f"  {build.shown(build.save_command)}")
        sign = build.shown(build.sign_command)
        echo(f"then sign the tarball here (or on any node holding a certified key): {sign}")
