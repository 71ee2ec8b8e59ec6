"""Packaging an experiment (script or notebook) for a federation, checking a received archive, and
importing its code on the receiving side."""

from __future__ import annotations

import io
import json
import os
import pickle
import stat
import sys
import types
import zipfile
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from openfl_cli.errors import FxError, SecurityError, UsageError
from openfl_cli.workflow.experiment import (
    ExperimentPackage,
    load_experiment,
    loading_experiment,
    missing_requirements,
    package_experiment,
    read_package,
    unload_experiment,
)
from openfl_cli.workflow.notebook_export import pip_install_arguments

CERT = "/home/me/cert/api.crt"
STORED = zipfile.ZIP_STORED

SCRIPT = '''\
"""A flow written as a script."""
from pathlib import Path

from openfl_cli.workflow import FLSpec, LocalRuntime, aggregator, collaborator

NAME = __name__


class Point:
    def __init__(self, x):
        self.x = x


class ScriptFlow(FLSpec):
    @aggregator
    def start(self):
        self.collaborators = self.runtime.collaborators
        self.next(self.local, foreach="collaborators")

    @collaborator
    def local(self):
        self.value = len(self.input)
        self.next(self.join)

    @aggregator
    def join(self, inputs):
        self.total = sum(i.value for i in inputs)
        self.next(self.end)

    @aggregator
    def end(self):
        pass


if __name__ == "__main__":
    Path(__file__).with_name("main_ran").write_text("the main block ran")
'''

FLOW_CELL = """\
class NotebookFlow(FLSpec):
    @aggregator
    def start(self):
        self.next(self.end)

    @aggregator
    def end(self):
        self.rate = learning_rate
"""


@pytest.fixture
def module_names() -> Iterator[list[str]]:
    """Names the test loads modules under; unloaded afterwards whatever happens."""
    names: list[str] = []
    yield names
    for name in names:
        unload_experiment(name)


def load(package: ExperimentPackage, folder: Path, name: str, names: list[str]) -> types.ModuleType:
    names.append(name)
    return load_experiment(package, folder, name)


def write_notebook(path: Path, *cells: nbformat.NotebookNode) -> Path:
    nbformat.write(new_notebook(cells=list(cells)), str(path))
    return path


def entries(archive: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(archive)) as handle:
        return {name: handle.read(name) for name in handle.namelist()}


def experiment_code(package: ExperimentPackage) -> str:
    return entries(package.archive)["experiment.py"].decode()


def make_zip(files: dict[str, bytes], *, links: tuple[str, ...] = (), compress: int = STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compress) as handle:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = compress
            info.external_attr = ((stat.S_IFLNK if name in links else stat.S_IFREG) | 0o644) << 16
            handle.writestr(info, data)
    return buffer.getvalue()


def valid_files(code: str = "class Flow:\n    pass\n", **manifest_changes: object) -> dict[str, bytes]:
    manifest: dict[str, object] = {
        "format": 1,
        "fx_version": "0.1.0",
        "source": "flow.py",
        "flow_class": "Flow",
        "files": ["experiment.py", "manifest.json", "requirements.txt"],
        "requirements": ["numpy>=1"],
    }
    manifest.update(manifest_changes)
    return {
        "experiment.py": code.encode(),
        "manifest.json": json.dumps(manifest).encode(),
        "requirements.txt": b"numpy>=1\n",
    }


# scripts


def test_a_script_travels_whole_and_loads_as_a_named_module(tmp_path: Path, module_names: list[str]) -> None:
    from openfl_cli.workflow import Collaborator, LocalRuntime

    source = tmp_path / "author" / "flow.py"
    source.parent.mkdir()
    source.write_text(SCRIPT)
    package = package_experiment(source, "ScriptFlow")
    assert package.source == "flow.py" and package.flow_class == "ScriptFlow"
    assert package.files == ("experiment.py", "manifest.json")
    assert package.requirements == () == package.left_out
    assert experiment_code(package) == SCRIPT

    folder = tmp_path / "envoy" / "exp"
    module = load(read_package(package.archive), folder, "experiment_script", module_names)
    assert module.NAME == "experiment_script" == module.ScriptFlow.__module__
    assert sys.modules["experiment_script"] is module
    assert (folder / "experiment.py").read_text() == SCRIPT
    assert not (folder / "main_ran").exists()  # imported, not run as __main__
    assert pickle.loads(pickle.dumps(module.Point(3))).x == 3  # pickle finds the module's classes

    flow = module.ScriptFlow()
    flow.runtime = LocalRuntime(collaborators=[Collaborator("a"), Collaborator("bb")])
    flow.run()
    assert flow.total == 3

    unload_experiment("experiment_script")
    assert "experiment_script" not in sys.modules


def test_requirements_beside_the_source_are_packaged(tmp_path: Path) -> None:
    (tmp_path / "flow.py").write_text(SCRIPT)
    (tmp_path / "requirements.txt").write_text("# pinned\nnumpy>=1  # arrays\n\ntorch\nnumpy>=1\n")
    package = package_experiment(tmp_path / "flow.py", "ScriptFlow")
    assert package.requirements == ("numpy>=1", "torch")
    assert "requirements.txt" in package.files
    assert entries(package.archive)["requirements.txt"] == b"numpy>=1\ntorch\n"
    assert json.loads(entries(package.archive)["manifest.json"])["requirements"] == ["numpy>=1", "torch"]


def test_a_requirement_that_cannot_travel_is_refused(tmp_path: Path) -> None:
    (tmp_path / "flow.py").write_text(SCRIPT)
    (tmp_path / "requirements.txt").write_text("numpy\n-e /home/me/src/lib\n")
    with pytest.raises(UsageError, match=r"requirements\.txt: line 2: '-e /home/me/src/lib'"):
        package_experiment(tmp_path / "flow.py", "ScriptFlow")


@pytest.mark.parametrize(
    ("name", "content", "flow_class", "message"),
    [
        ("flow.txt", SCRIPT, "ScriptFlow", r"flow\.txt: expected a Python script \(\.py\) or a Jupyter"),
        ("absent.py", None, "ScriptFlow", r"absent\.py: no such file"),
        ("flow.py", SCRIPT, "OtherFlow", r"flow\.py: no class OtherFlow defined at top level"),
        ("flow.py", "def f():\n    class Inner:\n        pass\n", "Inner", r"no class Inner defined at top"),
        ("flow.py", "x = (\n", "X", r"flow\.py: line 1: .*expected valid Python"),
        ("flow.py", SCRIPT, "not a name", r"flow class 'not a name'"),
    ],
)
def test_package_refuses_bad_sources(
    tmp_path: Path, name: str, content: str | None, flow_class: str, message: str
) -> None:
    if content is not None:
        (tmp_path / name).write_text(content)
    with pytest.raises(UsageError, match=message):
        package_experiment(tmp_path / name, flow_class)


# notebooks


def test_a_notebook_without_markers_keeps_only_its_definitions(tmp_path: Path) -> None:
    notebook = write_notebook(
        tmp_path / "flow.ipynb",
        new_markdown_cell("# A federated flow\n%pip install not-from-markdown"),
        new_code_cell(
            "%pip install -q -U torch 'scikit-learn>=1.4'\n!pip install numpy --index-url https://x.org"
        ),
        new_code_cell(
            "%%time\nimport numpy as np\nfrom openfl_cli.workflow import FLSpec, aggregator\n"
            "learning_rate = 0.01\nclasses = ['a', 'b']\ndata = np.load('data.npy')"
        ),
        new_code_cell(FLOW_CELL),
        new_code_cell(
            "def helper():\n    '''Docs.\n%d lines, !important\n'''\n    return 1\n"
            "flow = NotebookFlow()\n"
            "flow.runtime = FederatedRuntime(director='d', cert_chain='/c/ca.crt'); flow.run()"
        ),
        new_code_cell("%%bash\necho hi"),
    )
    (tmp_path / "requirements.txt").write_text("numpy\n")
    package = package_experiment(notebook, "NotebookFlow")
    code = experiment_code(package)

    assert "import numpy as np" in code and "learning_rate = 0.01" in code and "classes = ['a', 'b']" in code
    assert FLOW_CELL.strip() in code
    assert "%d lines, !important" in code  # inside a string: not a magic
    for gone in ("%pip", "!pip", "%%time", "np.load", "NotebookFlow()", "flow.run", "Runtime", "echo"):
        assert gone not in code
    assert package.left_out == (
        "cell 3, line 6: data = np.load('data.npy')",
        "cell 5, line 6: flow = NotebookFlow()",
        "cell 5, line 7: flow.runtime = FederatedRuntime(director='d', cert_chain='/c/ca.crt')",
        "cell 5, line 7: flow.run()",
        "cell 6: a %%bash cell (not Python)",
    )
    assert package.requirements == ("numpy", "torch", "scikit-learn>=1.4")

    module = types.ModuleType("scratch")
    exec(compile(code, "experiment.py", "exec"), module.__dict__)  # the exported code stands on its own
    assert module.learning_rate == 0.01 and module.helper() == 1


def test_marked_cells_are_exported_verbatim_and_nothing_else(tmp_path: Path) -> None:
    marked_code = "#| export\nimport numpy as np\n%matplotlib inline\nmodel = np.zeros(3)  # kept\n"
    notebook = write_notebook(
        tmp_path / "marked.ipynb",
        new_code_cell("!pip install -r requirements.txt numpy-financial"),
        new_code_cell(marked_code),
        new_code_cell("secret = 'unmarked'\nflow = MarkedFlow()"),
        new_code_cell("# | export\nfrom openfl_cli.workflow import FLSpec\n\nclass MarkedFlow(FLSpec): ..."),
    )
    (tmp_path / "requirements.txt").write_text("torch\n")
    package = package_experiment(notebook, "MarkedFlow")
    code = experiment_code(package)
    assert "model = np.zeros(3)  # kept" in code and "class MarkedFlow(FLSpec):" in code
    assert "%matplotlib" not in code and "secret" not in code and "pip" not in code
    assert package.left_out == ("cell 3, line 1: secret = 'unmarked'", "cell 3, line 2: flow = MarkedFlow()")
    assert package.requirements == ("torch", "numpy-financial")  # `-r requirements.txt` is read anyway

    write_notebook(notebook, new_code_cell("#| export\nx = 1"), new_code_cell("class Unmarked:\n    pass"))
    with pytest.raises(UsageError, match=r"no class Unmarked defined at top level .*#\| export"):
        package_experiment(notebook, "Unmarked")


def test_pip_arguments_that_are_not_requirements_are_listed_as_left_out(tmp_path: Path) -> None:
    notebook = write_notebook(
        tmp_path / "flow.ipynb",
        new_code_cell("!pip install -e /home/me/src/lib ./wheel.whl six\nclass F:\n    pass"),
    )
    package = package_experiment(notebook, "F")
    assert package.requirements == ("six",)
    assert package.left_out == (
        "cell 1, line 1: pip install -e /home/me/src/lib not exported: not a requirement by name (PEP 508)",
        "cell 1, line 1: pip install ./wheel.whl not exported: not a requirement by name (PEP 508)",
    )
    assert b"/home/me" not in package.archive


@pytest.mark.parametrize(
    ("command", "arguments"),
    [
        ("pip install -q -U torch 'scikit-learn>=1.4'", ["torch", "scikit-learn>=1.4"]),
        ("{sys.executable} -m pip install numpy==2.0 && echo done", ["numpy==2.0"]),
        ("pip3 install --index-url https://x.org/simple torch -r reqs.txt", ["torch", "-r reqs.txt"]),
        ("pip install six  # with a comment", ["six"]),
        ("pip list", []),
        ("ls -l", []),
    ],
)
def test_pip_install_lines_name_their_packages(command: str, arguments: list[str]) -> None:
    assert pip_install_arguments(command) == arguments


def test_a_cell_that_does_not_parse_is_named(tmp_path: Path) -> None:
    notebook = write_notebook(
        tmp_path / "broken.ipynb",
        new_markdown_cell("intro"),
        new_code_cell("import os"),
        new_code_cell("x = 1\nfiles = !ls\n"),
    )
    with pytest.raises(UsageError, match=r"broken\.ipynb: cell 3, line 2: invalid syntax"):
        package_experiment(notebook, "F")


def test_no_absolute_path_reaches_the_archive(tmp_path: Path) -> None:
    notebook = write_notebook(
        tmp_path / "flow.ipynb",
        new_code_cell("from openfl_cli.workflow import FLSpec, aggregator\nlearning_rate = 0.1"),
        new_code_cell(FLOW_CELL),
        new_code_cell(f"cert_chain = '{CERT}'\nkey = r'C:\\certs\\api.key'"),
        new_code_cell(
            f"runtime = FederatedRuntime(director={{'cert_chain': '{CERT}'}}, "
            f"notebook_path='{tmp_path}/flow.ipynb')"
        ),
    )
    package = package_experiment(notebook.resolve(), "NotebookFlow")
    assert package.source == "flow.ipynb"
    for name, data in entries(package.archive).items():
        assert CERT.encode() not in data, name
        assert str(tmp_path).encode() not in data, name
        assert b"api.key" not in data, name
    assert f"cell 3, line 1: cert_chain = '{CERT}'  (holds a local path)" in package.left_out
    manifest = json.loads(entries(package.archive)["manifest.json"])
    assert set(manifest) == {"format", "fx_version", "source", "flow_class", "files", "requirements"}


# determinism


def test_the_same_source_gives_the_same_bytes(tmp_path: Path) -> None:
    first_dir, second_dir = tmp_path / "one", tmp_path / "two"
    for folder in (first_dir, second_dir):
        folder.mkdir()
        write_notebook(folder / "flow.ipynb", new_code_cell("!pip install six\nclass F:\n    pass"))
    os.utime(second_dir / "flow.ipynb", (1_000_000_000, 1_000_000_000))  # another mtime, another folder
    first = package_experiment(first_dir / "flow.ipynb", "F")
    assert package_experiment(first_dir / "flow.ipynb", "F").archive == first.archive
    second = package_experiment(second_dir / "flow.ipynb", "F")
    assert second.archive == first.archive and second.hash == first.hash
    assert len(first.hash) == 64 and int(first.hash, 16) >= 0

    with zipfile.ZipFile(io.BytesIO(first.archive)) as handle:
        infos = handle.infolist()
    assert [info.filename for info in infos] == sorted(info.filename for info in infos)
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {info.external_attr >> 16 for info in infos} == {stat.S_IFREG | 0o644}

    write_notebook(second_dir / "flow.ipynb", new_code_cell("!pip install six\nclass F:\n    x = 1"))
    assert package_experiment(second_dir / "flow.ipynb", "F").hash != first.hash


# reading an archive


def test_read_package_gives_back_what_was_packaged(tmp_path: Path) -> None:
    (tmp_path / "flow.py").write_text(SCRIPT)
    (tmp_path / "requirements.txt").write_text("numpy>=1\n")
    package = package_experiment(tmp_path / "flow.py", "ScriptFlow")
    assert read_package(package.archive) == package  # left_out is () for a script either way
    assert read_package(make_zip(valid_files())).requirements == ("numpy>=1",)


def with_entry(name: str, data: bytes = b"x") -> bytes:
    return make_zip({**valid_files(), name: data})


def changed(**manifest_changes: object) -> bytes:
    return make_zip(valid_files(**manifest_changes))


def with_code(code: str) -> bytes:
    return make_zip(valid_files(code=code))


@pytest.mark.parametrize(
    ("archive", "error", "message"),
    [
        (with_entry("../evil.py"), SecurityError, r"entry '\.\./evil\.py' would land outside"),
        (with_entry("/etc/evil.py"), SecurityError, r"entry '/etc/evil\.py' would land outside"),
        (with_entry("C:\\evil.py"), SecurityError, r"entry 'C:.*evil\.py' would land outside"),
        (with_entry("notes.txt"), SecurityError, r"entry 'notes\.txt' is not part of an experiment"),
        (make_zip(valid_files(), links=("requirements.txt",)), SecurityError, r"is a symbolic link"),
        (make_zip({"experiment.py": b"class Flow: pass"}), SecurityError, r"'manifest\.json' is missing"),
        (with_entry("manifest.json", b"{not json"), UsageError, r"manifest\.json: not valid JSON"),
        (with_entry("manifest.json", b"[1]"), UsageError, r"manifest\.json: holds a list; expected"),
        (changed(files="experiment.py"), UsageError, r"manifest\.json: key 'files' must be list, got str"),
        (changed(format=True), UsageError, r"key 'format' must be int, got bool"),
        (changed(format=2), UsageError, r"format 2; this fx reads format 1"),
        (changed(requirements=[1]), UsageError, r"key 'requirements' must be a list of one-line"),
        (changed(extra=1), UsageError, r"manifest\.json: has keys .*; expected exactly"),
        (changed(source="/home/me/flow.py"), UsageError, r"'source' '/home/me/flow\.py'; expected a"),
        (changed(flow_class="not a name"), UsageError, r"'flow_class' 'not a name' is not a class name"),
        (changed(files=["experiment.py"]), UsageError, r"'files' lists \['experiment\.py'\]"),
        (changed(requirements=["torch"]), UsageError, r"'requirements\.txt' differs from the manifest"),
        (with_code("class Other:\n    pass\n"), UsageError, r"'experiment\.py': no class Flow defined"),
        (with_code("def f():\n    class Flow: pass\n"), UsageError, r"no class Flow defined at top level"),
        (with_code("def f(:\n"), UsageError, r"'experiment\.py': line 1: not valid Python"),
        (b"this is not a zip archive", SecurityError, r"not a readable zip archive"),
    ],
)
def test_read_package_refuses_what_is_not_an_experiment(
    archive: bytes, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message) as caught:
        read_package(archive)
    assert str(caught.value).startswith("experiment archive: ") and "\n" not in str(caught.value)


def test_read_package_refuses_oversized_archives() -> None:
    files = valid_files(code="class Flow:\n    pass\n" + "#" * 5000 + "\n")
    stored = make_zip(files)
    assert read_package(stored, max_bytes=len(stored)).flow_class == "Flow"
    with pytest.raises(SecurityError, match=r"^experiment archive: \d+ bytes, over the limit of 1000$"):
        read_package(stored, max_bytes=1000)
    compressed = make_zip(files, compress=zipfile.ZIP_DEFLATED)  # small on the wire, big unpacked
    assert len(compressed) < 2000
    with pytest.raises(SecurityError, match=r"unpacks to \d+ bytes, over the limit of 2000"):
        read_package(compressed, max_bytes=2000)


# loading


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("value = 1 / 0\n", r"experiment\.py, line 3: .*: ZeroDivisionError: division by zero$"),
        ("def f():\n    return missing\n\nf()\n", r"experiment\.py, line 4: .*: NameError: name 'missing'"),
        ("import surely_not_a_module_xyz\n", r"experiment\.py, line 3: .*: ModuleNotFoundError: No module"),
        ("raise SystemExit(3)\n", r"experiment\.py, line 3: .*: SystemExit: 3$"),
    ],
)
def test_an_error_at_import_names_the_file_and_line(
    tmp_path: Path, module_names: list[str], code: str, message: str
) -> None:
    package = read_package(make_zip(valid_files(code="class Flow:\n    pass\n" + code)))
    with pytest.raises(FxError, match=message) as caught:
        load(package, tmp_path / "exp", "experiment_failing", module_names)
    assert str(tmp_path / "exp" / "experiment.py") in str(caught.value)
    assert "experiment_failing" not in sys.modules
    assert not loading_experiment()


def test_loading_experiment_is_true_only_while_the_code_is_imported(
    tmp_path: Path, module_names: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    probe = types.ModuleType("experiment_probe")
    monkeypatch.setitem(sys.modules, "experiment_probe", probe)
    code = (
        "import experiment_probe\nfrom openfl_cli.workflow.experiment import loading_experiment\n"
        "experiment_probe.seen = loading_experiment()\n\nclass Flow:\n    pass\n"
    )
    assert not loading_experiment()
    load(read_package(make_zip(valid_files(code=code))), tmp_path, "experiment_probed", module_names)
    assert probe.seen is True
    assert not loading_experiment()


def test_each_load_runs_the_code_written_not_a_cached_one(
    tmp_path: Path, module_names: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", False)  # as on an envoy without PYTHONDONTWRITEBYTECODE
    for value in ("1", "2"):  # same size, written within the same second: a .pyc would match both
        package = read_package(make_zip(valid_files(code=f"class Flow:\n    VALUE = {value}\n")))
        module = load(package, tmp_path, f"experiment_value_{value}", module_names)
        assert (module.Flow.VALUE, module.__name__) == (int(value), f"experiment_value_{value}")


def test_load_refuses_names_that_would_clash(tmp_path: Path) -> None:
    package = read_package(make_zip(valid_files()))
    with pytest.raises(UsageError, match=r"module 'json' is already imported"):
        load_experiment(package, tmp_path, "json")
    with pytest.raises(UsageError, match=r"expected a plain identifier"):
        load_experiment(package, tmp_path, "experiments.one")
    assert not (tmp_path / "experiment.py").exists()


def test_load_refuses_a_package_whose_hash_does_not_match(tmp_path: Path) -> None:
    package = read_package(make_zip(valid_files()))
    forged = ExperimentPackage(**{**vars(package), "hash": "0" * 64})
    with pytest.raises(SecurityError, match=r"sha256 is not the package's hash"):
        load_experiment(forged, tmp_path, "experiment_forged")
    assert "experiment_forged" not in sys.modules


# requirements


def test_missing_requirements_reports_what_this_environment_lacks() -> None:
    excluded_by_marker = "surely-not-a-package-xyz; python_version < '3'"
    assert missing_requirements(["numpy>=1", "pytest", excluded_by_marker]) == []
    missing = missing_requirements(
        ["numpy>=1", "surely-not-a-package-xyz==1.0", "numpy<0.1", "not a requirement!", "", "# comment"]
    )
    assert missing[:2] == ["surely-not-a-package-xyz==1.0", "numpy<0.1"]
    assert len(missing) == 3 and missing[2].startswith("not a requirement! (does not parse: ")
