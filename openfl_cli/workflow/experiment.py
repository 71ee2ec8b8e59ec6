"""An experiment as it travels from the data scientist to the envoys: a deterministic zip of the flow's
code (`experiment.py`), its requirements and a manifest, named by the sha256 of its bytes.

The envoys' admins review the package (hash, files, requirements) before anything runs, so the
archive holds only what the flow needs: never certificate paths or other absolute local paths from
the author's machine, and the same source always gives the same bytes, so that a hash compared by
two people means the same code. The receiving side checks the archive before trusting any of it,
then imports the code as an ordinary (non-main) module that pickle can find classes in.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.machinery
import importlib.util
import io
import json
import keyword
import re
import stat
import sys
import traceback
import types
import zipfile
import zlib
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path, PurePosixPath
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion

import openfl_cli
from openfl_cli.errors import FxError, SecurityError, UsageError
from openfl_cli.workflow.notebook_export import export_notebook

FORMAT_VERSION = 1
EXPERIMENT_FILE = "experiment.py"
MANIFEST_FILE = "manifest.json"
REQUIREMENTS_FILE = "requirements.txt"
KNOWN_FILES = (EXPERIMENT_FILE, MANIFEST_FILE, REQUIREMENTS_FILE)
MANIFEST_TYPES: dict[str, type] = {
    "format": int,
    "fx_version": str,
    "source": str,
    "flow_class": str,
    "files": list,
    "requirements": list,
}
SOURCE_SUFFIXES = (".py", ".ipynb")
# requirement URLs that name something every envoy can fetch; anything else is a local path
REMOTE_URL_PREFIXES = ("https://", "http://", "git+https://", "git+http://", "git+ssh://")
PIP_COMMENT = re.compile(r"(^|\s)#.*$")  # pip's rule: '#' at the start of a line or after a space
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can hold: no build time in the bytes
ZIP_FILE_MODE = (stat.S_IFREG | 0o644) << 16
UNIX_SYSTEM = 3  # zip "made by" field, fixed so that Windows and Linux give the same bytes
DEFAULT_MAX_BYTES = 64 << 20
ARCHIVE = "experiment archive"  # how read_package's messages name what they refuse

_loading: ContextVar[bool] = ContextVar("openfl_cli_loading_experiment", default=False)


@dataclass(frozen=True)
class ExperimentPackage:
    """A packaged experiment. `hash` is what reviewers compare; `left_out` (notebooks only, never in
    the archive) tells the author which top-level statements did not travel."""

    archive: bytes = field(repr=False)
    hash: str
    flow_class: str
    files: tuple[str, ...]
    requirements: tuple[str, ...]
    source: str
    left_out: tuple[str, ...]


def package_experiment(source: str | Path, flow_class: str) -> ExperimentPackage:
    """Package the flow `flow_class` defined in the script or notebook `source`."""
    path = Path(source)
    if not flow_class.isidentifier() or keyword.iskeyword(flow_class):
        raise UsageError(f"{path}: flow class {flow_class!r}: expected a class name like 'FederatedFlow'")
    if path.suffix not in SOURCE_SUFFIXES:
        raise UsageError(f"{path}: expected a Python script (.py) or a Jupyter notebook (.ipynb)")
    if not path.is_file():
        raise UsageError(f"{path}: no such file; expected the script or notebook of the experiment")
    requirements = _requirements_beside(path)
    left_out: list[str] = []
    hint = ""
    if path.suffix == ".py":
        code = _read_script(path)
    else:
        export = export_notebook(path)
        code, left_out = export.code, export.left_out
        hint = " (is its cell marked '#| export'?)" if export.marked else ""
        for where, argument in export.pip_arguments:
            problem = _pip_argument_problem(argument, path)
            if problem is None:
                requirements.append(argument)
            elif problem:
                left_out.append(f"{where}: pip install {argument} not exported: {problem}")
    if not _defines_class(ast.parse(code), flow_class):
        raise UsageError(f"{path}: no class {flow_class} defined at top level of the exported code{hint}")
    return _build_package(code, flow_class, list(dict.fromkeys(requirements)), path.name, left_out)


def read_package(archive: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> ExperimentPackage:
    """Check an archive received from elsewhere: a safe zip of exactly the known entries, a manifest
    that matches them, and code that parses and defines the flow class. Runs none of it."""
    contents, manifest = _checked_contents(archive, max_bytes)
    return ExperimentPackage(
        archive=archive,
        hash=hashlib.sha256(archive).hexdigest(),
        flow_class=manifest["flow_class"],
        files=tuple(sorted(contents)),
        requirements=tuple(manifest["requirements"]),
        source=manifest["source"],
        left_out=(),
    )


def load_experiment(package: ExperimentPackage, folder: str | Path, module_name: str) -> types.ModuleType:
    """Write the package's experiment.py into `folder` and import it as module `module_name`,
    registered in sys.modules (pickle finds its classes there) and never as __main__."""
    if not module_name.isidentifier() or keyword.iskeyword(module_name):
        # a dotted name would make pickle import a parent package that does not exist
        raise UsageError(f"module name {module_name!r}: expected a plain identifier such as 'experiment_1'")
    if module_name in sys.modules:
        raise UsageError(f"module {module_name!r} is already imported; unload it or choose another name")
    if hashlib.sha256(package.archive).hexdigest() != package.hash:
        raise SecurityError(f"{ARCHIVE}: its sha256 is not the package's hash {package.hash}")
    contents, _ = _checked_contents(package.archive, DEFAULT_MAX_BYTES)
    path = Path(folder) / EXPERIMENT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(contents[EXPERIMENT_FILE])
    return _import_module(path, module_name)


def unload_experiment(module_name: str) -> None:
    """Forget the module, so that the name can hold the next experiment."""
    sys.modules.pop(module_name, None)


def loading_experiment() -> bool:
    """True while `load_experiment` runs experiment code: a runtime refuses to start then, so that a
    flow calling `flow.run()` at import fails clearly instead of recursing."""
    return _loading.get()


def missing_requirements(requirements: Sequence[str]) -> list[str]:
    """The requirement lines this environment does not satisfy; a line that does not parse comes back
    with why. Requirements whose environment marker excludes this Python are satisfied."""
    missing: list[str] = []
    for line in requirements:
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            requirement = Requirement(text)
        except InvalidRequirement as error:
            missing.append(f"{text} (does not parse: {_first_line(error)})")
            continue
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        try:
            installed = version(requirement.name)
        except PackageNotFoundError:
            missing.append(text)
            continue
        try:
            if not requirement.specifier.contains(installed, prereleases=True):
                missing.append(text)
        except InvalidVersion:
            missing.append(f"{text} (installed version {installed!r} does not parse)")
    return missing


# packaging


def _read_script(path: Path) -> str:
    try:
        code = path.read_bytes().decode("utf-8-sig")  # a BOM is legal in a .py file, not in ast.parse
    except UnicodeDecodeError as error:
        raise UsageError(f"{path}: not UTF-8 text ({error}); expected a Python script") from None
    try:
        ast.parse(code)
    except SyntaxError as error:
        raise UsageError(f"{path}: line {error.lineno}: {error.msg}; expected valid Python") from None
    return code


def _requirements_beside(source: Path) -> list[str]:
    """The requirement lines of requirements.txt beside the source, comments and blank lines dropped."""
    path = source.parent / REQUIREMENTS_FILE
    if not path.is_file():
        return []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"{path}: not readable as UTF-8 text ({error})") from None
    requirements: list[str] = []
    for number, line in enumerate(lines, start=1):
        text = PIP_COMMENT.sub("", line).strip()
        if not text:
            continue
        problem = _requirement_problem(text)
        if problem:
            raise UsageError(f"{path}: line {number}: {text!r}: {problem}; expected e.g. 'numpy>=1.26'")
        requirements.append(text)
    return requirements


def _requirement_problem(text: str) -> str | None:
    """Why `text` cannot travel as a requirement, or None: envoys install by name (or remote URL)."""
    try:
        requirement = Requirement(text)
    except InvalidRequirement:
        return "not a requirement by name (PEP 508)"
    if requirement.url and not requirement.url.startswith(REMOTE_URL_PREFIXES):
        return "a local file, not a requirement by name"
    return None


def _pip_argument_problem(argument: str, notebook: Path) -> str | None:
    """None when the argument travels as a requirement; "" when it needs no mention (`-r` of the
    requirements.txt that is read anyway); else why it is left out."""
    option, _, value = argument.partition(" ")
    if option in ("-r", "--requirement") and value:
        if (notebook.parent / value).resolve() == (notebook.parent / REQUIREMENTS_FILE).resolve():
            return ""
        return f"only the {REQUIREMENTS_FILE} beside the notebook is read"
    return _requirement_problem(argument)


def _defines_class(tree: ast.Module, name: str) -> bool:
    return any(isinstance(node, ast.ClassDef) and node.name == name for node in tree.body)


def _build_package(
    code: str, flow_class: str, requirements: list[str], source: str, left_out: list[str]
) -> ExperimentPackage:
    entries = {EXPERIMENT_FILE: code.encode("utf-8")}
    if requirements:
        entries[REQUIREMENTS_FILE] = "".join(f"{line}\n" for line in requirements).encode("utf-8")
    files = sorted([*entries, MANIFEST_FILE])
    manifest = {
        "format": FORMAT_VERSION,
        "fx_version": openfl_cli.__version__,
        "source": source,
        "flow_class": flow_class,
        "files": files,
        "requirements": requirements,
    }
    entries[MANIFEST_FILE] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8")
    archive = _deterministic_zip(entries)
    return ExperimentPackage(
        archive=archive,
        hash=hashlib.sha256(archive).hexdigest(),
        flow_class=flow_class,
        files=tuple(files),
        requirements=tuple(requirements),
        source=source,
        left_out=tuple(left_out),
    )


def _deterministic_zip(entries: dict[str, bytes]) -> bytes:
    """Sorted entries with fixed timestamps and modes, stored uncompressed: the bytes depend on the
    content only, not on the clock, the platform or the zlib build."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as handle:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=ZIP_TIMESTAMP)
            info.external_attr = ZIP_FILE_MODE
            info.create_system = UNIX_SYSTEM
            handle.writestr(info, entries[name])
    return buffer.getvalue()


# reading


def _checked_contents(archive: bytes, max_bytes: int) -> tuple[dict[str, bytes], dict[str, Any]]:
    """(entry name -> bytes, manifest) of an archive that passes every check of `read_package`."""
    if len(archive) > max_bytes:
        raise SecurityError(f"{ARCHIVE}: {len(archive)} bytes, over the limit of {max_bytes}")
    contents = _read_entries(archive, max_bytes)
    manifest = _parse_manifest(contents[MANIFEST_FILE])
    if manifest["files"] != sorted(contents):
        listed, present = manifest["files"], sorted(contents)
        raise UsageError(
            f"{ARCHIVE}: {MANIFEST_FILE}: 'files' lists {listed}; expected the entries {present}"
        )
    _check_requirements_entry(contents.get(REQUIREMENTS_FILE), manifest["requirements"])
    _check_code(contents[EXPERIMENT_FILE], manifest["flow_class"])
    return contents, manifest


def _read_entries(archive: bytes, max_bytes: int) -> dict[str, bytes]:
    try:
        handle = zipfile.ZipFile(io.BytesIO(archive))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise SecurityError(f"{ARCHIVE}: not a readable zip archive ({error})") from None
    with handle:
        members = handle.infolist()
        for member in members:
            _check_entry(member)
        names = [member.filename for member in members]
        if len(set(names)) != len(names):
            raise SecurityError(f"{ARCHIVE}: an entry name appears twice in {names}; expected each once")
        for required in (EXPERIMENT_FILE, MANIFEST_FILE):
            if required not in names:
                raise SecurityError(f"{ARCHIVE}: entry {required!r} is missing; every experiment holds one")
        unpacked = sum(member.file_size for member in members)
        if unpacked > max_bytes:
            raise SecurityError(f"{ARCHIVE}: unpacks to {unpacked} bytes, over the limit of {max_bytes}")
        return {member.filename: _read_entry(handle, member) for member in members}


def _check_entry(member: zipfile.ZipInfo) -> None:
    name = member.filename
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
        raise SecurityError(f"{ARCHIVE}: entry {name!r} would land outside the experiment folder")
    if stat.S_ISLNK(member.external_attr >> 16):
        raise SecurityError(f"{ARCHIVE}: entry {name!r} is a symbolic link; expected a plain file")
    if name not in KNOWN_FILES:
        raise SecurityError(f"{ARCHIVE}: entry {name!r} is not part of an experiment; expected {KNOWN_FILES}")
    if member.flag_bits & 0x1:
        raise SecurityError(f"{ARCHIVE}: entry {name!r} is encrypted; expected a plain file")


def _read_entry(handle: zipfile.ZipFile, member: zipfile.ZipInfo) -> bytes:
    """The entry's bytes, never more than its header announced (a lying header cannot inflate it)."""
    try:
        with handle.open(member) as stream:
            data = stream.read(member.file_size + 1)
    except (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, EOFError, OSError) as error:
        raise SecurityError(f"{ARCHIVE}: entry {member.filename!r} cannot be read ({error})") from None
    if len(data) != member.file_size:
        raise SecurityError(f"{ARCHIVE}: entry {member.filename!r} is not the size its header says")
    return data


def _parse_manifest(data: bytes) -> dict[str, Any]:
    where = f"{ARCHIVE}: {MANIFEST_FILE}"
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UsageError(f"{where}: not valid JSON ({error}); expected a JSON object") from None
    if not isinstance(manifest, dict):
        raise UsageError(f"{where}: holds a {type(manifest).__name__}; expected a JSON object")
    if set(manifest) != set(MANIFEST_TYPES):
        raise UsageError(f"{where}: has keys {sorted(manifest)}; expected exactly {sorted(MANIFEST_TYPES)}")
    for key, kind in MANIFEST_TYPES.items():
        value = manifest[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise UsageError(f"{where}: key {key!r} must be {kind.__name__}, got {type(value).__name__}")
        if isinstance(value, list) and not all(_is_one_line(item) for item in value):
            raise UsageError(f"{where}: key {key!r} must be a list of one-line strings")
    _check_manifest_values(manifest, where)
    return manifest


def _is_one_line(item: object) -> bool:
    return isinstance(item, str) and bool(item.strip()) and "\n" not in item and "\r" not in item


def _check_manifest_values(manifest: dict[str, Any], where: str) -> None:
    if manifest["format"] != FORMAT_VERSION:
        raise UsageError(f"{where}: format {manifest['format']}; this fx reads format {FORMAT_VERSION}")
    flow_class, source = manifest["flow_class"], manifest["source"]
    if not flow_class.isidentifier() or keyword.iskeyword(flow_class):
        raise UsageError(f"{where}: 'flow_class' {flow_class!r} is not a class name")
    if Path(source).name != source or "\\" in source or not source.endswith(SOURCE_SUFFIXES):
        raise UsageError(f"{where}: 'source' {source!r}; expected a file name ending in .py or .ipynb")


def _check_requirements_entry(data: bytes | None, requirements: list[str]) -> None:
    """requirements.txt is what pip installs, the manifest what reviewers read: they must agree."""
    if data is None:
        if requirements:
            raise UsageError(
                f"{ARCHIVE}: entry {REQUIREMENTS_FILE!r} is missing; the manifest has requirements"
            )
        return
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise UsageError(f"{ARCHIVE}: entry {REQUIREMENTS_FILE!r} is not UTF-8 text") from None
    if lines != requirements:
        raise UsageError(f"{ARCHIVE}: entry {REQUIREMENTS_FILE!r} differs from the manifest's 'requirements'")


def _check_code(data: bytes, flow_class: str) -> None:
    where = f"{ARCHIVE}: entry {EXPERIMENT_FILE!r}"
    try:
        tree = ast.parse(data.decode("utf-8"), filename=EXPERIMENT_FILE)
    except UnicodeDecodeError:
        raise UsageError(f"{where} is not UTF-8 text; expected Python source") from None
    except (SyntaxError, ValueError) as error:  # ValueError: null bytes
        line = getattr(error, "lineno", None)
        raise UsageError(f"{where}: line {line}: not valid Python ({_first_line(error)})") from None
    if not _defines_class(tree, flow_class):
        raise UsageError(f"{where}: no class {flow_class} defined at top level, as the manifest says")


# loading


class _UncachedSourceLoader(importlib.machinery.SourceFileLoader):
    """Compiles the file at every load and writes no .pyc: bytecode cached for an earlier experiment
    of the same size written in the same second would otherwise run in place of this one."""

    def get_code(self, fullname: str) -> types.CodeType:
        path = self.get_filename(fullname)
        return compile(self.get_data(path), path, "exec", dont_inherit=True)


def _import_module(path: Path, module_name: str) -> types.ModuleType:
    loader = _UncachedSourceLoader(module_name, str(path))
    spec = importlib.util.spec_from_file_location(module_name, path, loader=loader)
    if spec is None:
        raise FxError(f"{path}: cannot be imported as module {module_name!r}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # before running it: dataclasses and pickle look it up by name
    token = _loading.set(True)
    try:
        loader.exec_module(module)
    except (Exception, SystemExit) as error:  # SystemExit: experiment code must not end the envoy
        sys.modules.pop(module_name, None)
        raise FxError(_import_failure(path, error)) from error
    finally:
        _loading.reset(token)
    return module


def _import_failure(path: Path, error: BaseException) -> str:
    line: int | None = None
    if isinstance(error, SyntaxError) and error.filename == str(path):
        line = error.lineno
    for frame in traceback.extract_tb(error.__traceback__):
        if frame.filename == str(path):
            line = frame.lineno  # the innermost line of the experiment's own code
    where = f"{path}, line {line}" if line else str(path)
    detail = _first_line(error)
    what = f"{type(error).__name__}: {detail}" if detail else type(error).__name__
    return f"{where}: importing the experiment failed: {what}"


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else ""
