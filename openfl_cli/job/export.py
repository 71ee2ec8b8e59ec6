"""`job.export_job(job_root)`: the job as the `fx` workspace `job_root/<name>/`.

    plan/plan.yaml, cols.yaml, data.yaml   one plan for every participant (the core checks its hash)
    src/                                   scripts, resources, shipped modules of executors/filters/components
    save/init.pbuf                         the initial model
    requirements.txt, meta.json            meta.json: name, min_clients, mandatory_clients, deploy_map
    logs/ data/ cert/ local_state/         the folders of every workspace

What goes in is decided by `openfl_cli.job.content`. The workspace is assembled in a hidden folder
beside the target and published by rename; an existing folder is replaced only when it is an earlier
export of this job (its meta.json names the job).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from openfl_cli.errors import UsageError
from openfl_cli.job.content import INIT_PATH, ExportContent, export_content

if TYPE_CHECKING:
    from openfl_cli.job.job import FedJob

META = "meta.json"


def export_job(job: FedJob, job_root: str | Path, n_clients: int | None = None) -> Path:
    root = Path(job_root).expanduser().absolute()
    target = root / job.name
    _check_replaceable(target, job.name)
    content = export_content(job, target, n_clients)
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{job.name}.", suffix=".exporting", dir=root))
    try:
        write_workspace(content, staging)
        staging.chmod(0o755)  # mkdtemp makes it 0700
        _publish(staging, target, job.name)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def write_workspace(content: ExportContent, folder: Path) -> None:
    """Write `content` into the (new, empty) folder `folder`."""
    from openfl_cli.plan.writer import write_plan
    from openfl_cli.tensors.snapshot import save_snapshot
    from openfl_cli.workspace.layout import complete_layout

    write_plan(content.spec, folder)
    src = folder / "src"
    src.mkdir(exist_ok=True)
    for name, source in content.files.items():
        destination = folder / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, destination)
    if not (src / "__init__.py").exists():
        (src / "__init__.py").write_text("", encoding="utf-8")  # `src.` classes import as a package
    save_snapshot(folder / INIT_PATH, content.initial_model, round_number=0)
    text = "".join(f"{line}\n" for line in content.requirements)
    (folder / "requirements.txt").write_text(text, encoding="utf-8")
    (folder / META).write_text(json.dumps(content.meta, indent=2) + "\n", encoding="utf-8")
    complete_layout(folder)


def is_export_of(folder: Path, name: str) -> bool:
    """Whether `folder` holds an export of the job `name` (its meta.json says so)."""
    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("name") == name


def _check_replaceable(target: Path, name: str) -> None:
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise UsageError(f"{target} exists and is not a folder; refusing to replace it")
    if target.is_dir() and any(target.iterdir()) and not is_export_of(target, name):
        raise UsageError(f"{target} exists and is not an export of job {name!r}; refusing to overwrite it")


def _publish(staging: Path, target: Path, name: str) -> None:
    """Rename `staging` to `target`. An earlier export is moved aside first (a rename cannot replace a
    folder that has files) and deleted once the new one is in place."""
    _check_replaceable(target, name)  # again: the folder may have appeared while we wrote
    if not target.is_dir() or not any(target.iterdir()):
        os.replace(staging, target)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".replaced", dir=target.parent))
    os.replace(target, aside / name)
    try:
        os.replace(staging, target)
    except BaseException:
        os.replace(aside / name, target)
        shutil.rmtree(aside, ignore_errors=True)
        raise
    shutil.rmtree(aside, ignore_errors=True)
