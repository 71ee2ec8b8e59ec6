"""A Jupyter notebook turned into the code of an experiment module (see `experiment.py`).

A notebook mixes the flow's definitions with the things that only make sense on the data scientist's
machine: loading data, building the runtime from local certificate paths, `flow.run()` itself. Only
the definitions may travel, so either the author marks the cells to export (`#| export`, as nbdev and
OpenFL's notebooks do), or every cell is filtered down to its defining statements. Cell numbers in
messages count every cell of the notebook, markdown included, from 1: the position the author sees.
"""

from __future__ import annotations

import ast
import io
import re
import shlex
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from openfl_cli.errors import UsageError

EXPORT_MARKER = re.compile(r"#\s*\|\s*export[si]?")  # a whole (stripped) line: `#| export`, `# | export`
# cell magics whose body is Python run as usual: the magic line goes, the body stays
PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture"})
# pip options that take a value (dropped with it); the ones that name files are reported as not exported
PIP_OPTIONS_WITH_VALUE = frozenset(
    {
        "-i",
        "--index-url",
        "--extra-index-url",
        "-f",
        "--find-links",
        "-t",
        "--target",
        "--prefix",
        "--root",
        "--src",
        "--platform",
        "--python-version",
        "--implementation",
        "--abi",
        "--upgrade-strategy",
        "--progress-bar",
        "--trusted-host",
        "--proxy",
        "--timeout",
        "--retries",
        "--cache-dir",
        "--log",
        "--only-binary",
        "--no-binary",
    }
)
PIP_FILE_OPTIONS = frozenset({"-r", "--requirement", "-e", "--editable", "-c", "--constraint"})
SHELL_SEPARATORS = frozenset({"&&", "||", ";", "|", "&"})
SUMMARY_CHARS = 80
COMPOUND_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
DEFINITIONS = (ast.Import, ast.ImportFrom, *COMPOUND_DEFINITIONS)


@dataclass
class NotebookExport:
    """What a notebook gives an experiment: the module's code, what its pip lines install (as
    (where, argument) pairs, checked by the caller), and one line per statement not exported."""

    code: str
    pip_arguments: list[tuple[str, str]]
    left_out: list[str]
    marked: bool  # the author chose the cells with export markers


@dataclass
class _Cell:
    number: int
    source: str  # magic lines blanked, so that line numbers still match the notebook
    marked: bool
    cell_magic: str | None  # a `%%` magic whose body is not Python: the cell cannot be exported


def export_notebook(path: Path) -> NotebookExport:
    """Export `path`: the marked cells verbatim when any cell is marked, else the defining statements."""
    cells, pip_arguments = _read_cells(path)
    marked = any(cell.marked for cell in cells)
    chunks: list[str] = []
    left_out: list[str] = []
    for cell in cells:
        if cell.cell_magic is not None:
            left_out.append(f"cell {cell.number}: a %%{cell.cell_magic} cell (not Python)")
        elif marked and cell.marked:
            _parse(path, cell)
            chunks.append(_chunk(cell.number, [cell.source.strip("\n")]))
        elif marked:
            left_out += _unmarked_cell_lines(cell)
        else:
            kept = _split_definitions(path, cell, left_out)
            if kept:
                chunks.append(_chunk(cell.number, kept))
    header = f"# Exported by fx from {path.name}; '# cell N' counts every cell of the notebook from 1.\n"
    return NotebookExport(header + "\n\n".join(chunks), pip_arguments, left_out, marked)


def _read_cells(path: Path) -> tuple[list[_Cell], list[tuple[str, str]]]:
    import nbformat  # only notebooks need it

    try:
        notebook = nbformat.read(str(path), as_version=4)
    except Exception as error:  # nbformat raises JSON, validation and OS errors alike
        raise UsageError(f"{path}: not a readable Jupyter notebook ({_first_line(error)})") from None
    cells: list[_Cell] = []
    pip_arguments: list[tuple[str, str]] = []
    for number, cell in enumerate(notebook.cells, start=1):
        if cell.cell_type != "code":
            continue
        source, cell_magic, magics = _strip_magics(str(cell.source))
        for line, command in magics:
            pip_arguments += [(f"cell {number}, line {line}", arg) for arg in pip_install_arguments(command)]
        marked = any(EXPORT_MARKER.fullmatch(line.strip()) for line in source.splitlines())
        cells.append(_Cell(number, source, marked, cell_magic))
    return cells, pip_arguments


def _strip_magics(source: str) -> tuple[str, str | None, list[tuple[int, str]]]:
    """(source with IPython magic and shell lines blanked, the name of a non-Python cell magic or None,
    the (line number, command) of each magic removed). Lines inside multi-line strings are not magics."""
    lines = source.splitlines()
    first = next((index for index, line in enumerate(lines) if line.strip()), None)
    if first is not None and lines[first].lstrip().startswith("%%"):
        name = (lines[first].lstrip()[2:].split() or [""])[0]
        if name not in PYTHON_CELL_MAGICS:
            return "", name, []
        lines[first] = ""
    commands = _magic_commands(lines)
    blanked = list(lines)
    for command in commands:
        blanked[command[0]] = _blank(lines[command[0]])
        for index in command[1:]:
            blanked[index] = ""
    inside_strings = _rows_inside_strings("\n".join(blanked))
    magics: list[tuple[int, str]] = []
    for command in commands:
        if command[0] + 1 in inside_strings:  # a string's content that happens to start with % or !
            for index in command:
                blanked[index] = lines[index]
            continue
        text = " ".join(lines[index].strip().removesuffix("\\") for index in command)
        magics.append((command[0] + 1, text.lstrip("%!").strip()))
    return "\n".join(blanked) + "\n", None, magics


def _magic_commands(lines: list[str]) -> list[list[int]]:
    """The line indexes of each magic or shell command: a line starting with % or !, and the lines
    its trailing backslashes continue it onto."""
    commands: list[list[int]] = []
    current: list[int] | None = None
    for index, line in enumerate(lines):
        if current is None and not line.lstrip().startswith(("%", "!")):
            continue
        current = [*(current or []), index]
        if not line.rstrip().endswith("\\"):
            commands.append(current)
            current = None
    if current:
        commands.append(current)
    return commands


def _blank(line: str) -> str:
    """An empty line at top level; `pass` inside a block, which may hold nothing else."""
    indent = line[: len(line) - len(line.lstrip())]
    return f"{indent}pass" if indent else ""


def _rows_inside_strings(source: str) -> set[int]:
    """1-based rows that begin inside a multi-line token (a triple-quoted string): not statements."""
    rows: set[int] = set()
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            rows.update(range(token.start[0] + 1, token.end[0] + 1))
    except (tokenize.TokenError, SyntaxError):
        pass  # the parse that follows reports the problem with its line
    return rows


def pip_install_arguments(command: str) -> list[str]:
    """What `pip install ...` in a magic or shell line (`pip install -q x`, `python -m pip install x`)
    names: requirements, and `-r FILE`/`-e PATH` as one argument each. Other options are dropped."""
    try:
        words = shlex.split(command, comments=True)
    except ValueError:
        return []  # unbalanced quotes: not something we can read
    for index in range(len(words) - 1):
        if words[index + 1] == "install" and re.fullmatch(r"(.*[/\\])?pip[0-9.]*(\.exe)?", words[index]):
            return list(_install_targets(words[index + 2 :]))
    return []


def _install_targets(words: list[str]) -> Iterator[str]:
    skip_value = False
    for position, word in enumerate(words):
        if skip_value:
            skip_value = False
        elif word in SHELL_SEPARATORS:
            return
        elif word in PIP_FILE_OPTIONS:
            yield f"{word} {words[position + 1]}" if position + 1 < len(words) else word
            skip_value = True
        elif word.startswith("-"):
            skip_value = word in PIP_OPTIONS_WITH_VALUE
            if word.split("=", 1)[0] in PIP_FILE_OPTIONS:
                yield word
        else:
            yield word


def _parse(path: Path, cell: _Cell) -> ast.Module:
    try:
        return ast.parse(cell.source)
    except SyntaxError as error:
        raise UsageError(f"{path}: cell {cell.number}, line {error.lineno}: {error.msg}") from None


def _split_definitions(path: Path, cell: _Cell, left_out: list[str]) -> list[str]:
    """The source of the cell's defining statements; every other statement is added to `left_out`."""
    kept: list[str] = []
    for statement in _parse(path, cell).body:
        if _is_definition(statement):
            if kept and (isinstance(statement, COMPOUND_DEFINITIONS) or "\n" in kept[-1]):
                kept.append("")  # a blank line around definitions, as the cell most likely had
            kept.append(_statement_source(cell.source, statement))
        else:
            left_out.append(_left_out_line(cell, statement, _why_left_out(statement)))
    return kept


def _unmarked_cell_lines(cell: _Cell) -> list[str]:
    try:
        statements = ast.parse(cell.source).body
    except SyntaxError:
        unparsed = [f"cell {cell.number}: not marked for export (and not valid Python)"]
        return unparsed if cell.source.strip() else []
    return [_left_out_line(cell, statement, "") for statement in statements]


def _is_definition(statement: ast.stmt) -> bool:
    """Imports, function and class definitions, and assignments of literals to plain names: what a
    module can define without running the notebook's work."""
    if isinstance(statement, DEFINITIONS):
        return True
    if isinstance(statement, ast.Assign):
        targets, value = statement.targets, statement.value
    elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
        targets, value = [statement.target], statement.value
    else:
        return False
    return all(_binds_names(target) for target in targets) and _is_literal(value) and not _local_paths(value)


def _binds_names(target: ast.expr) -> bool:
    if isinstance(target, ast.Name):
        return True
    if isinstance(target, ast.Starred):
        return _binds_names(target.value)
    return isinstance(target, (ast.Tuple, ast.List)) and all(_binds_names(item) for item in target.elts)


def _is_literal(value: ast.expr) -> bool:
    try:
        ast.literal_eval(value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _local_paths(value: ast.expr) -> list[str]:
    """The strings in `value` that look like absolute local paths: never baked into an experiment."""
    strings = [node.value for node in ast.walk(value) if isinstance(node, ast.Constant)]
    return [text for text in strings if isinstance(text, str) and _looks_like_local_path(text)]


def _looks_like_local_path(text: str) -> bool:
    """An absolute path on this machine: `/home/...`, `~/...`, `C:\\...`, `\\\\server\\...`, `file:...`."""
    return bool(re.match(r"(/[^/\s]|~[/\\]|[A-Za-z]:[/\\]|\\\\|file:)", text))


def _why_left_out(statement: ast.stmt) -> str:
    value = statement.value if isinstance(statement, (ast.Assign, ast.AnnAssign)) else None
    return "holds a local path" if value is not None and _is_literal(value) and _local_paths(value) else ""


def _statement_source(source: str, statement: ast.stmt) -> str:
    if isinstance(statement, COMPOUND_DEFINITIONS):
        # a top-level definition owns its lines whole, decorators included
        first = min([statement.lineno, *(decorator.lineno for decorator in statement.decorator_list)])
        return "\n".join(source.splitlines()[first - 1 : statement.end_lineno])
    return ast.get_source_segment(source, statement) or ast.unparse(statement)


def _left_out_line(cell: _Cell, statement: ast.stmt, why: str) -> str:
    text = (ast.get_source_segment(cell.source, statement) or ast.unparse(statement)).strip()
    summary = text.splitlines()[0] if text else ""
    if len(summary) > SUMMARY_CHARS or "\n" in text:
        summary = summary[:SUMMARY_CHARS].rstrip() + " ..."
    return f"cell {cell.number}, line {statement.lineno}: {summary}" + (f"  ({why})" if why else "")


def _chunk(number: int, sources: list[str]) -> str:
    return f"# cell {number}\n" + "\n".join(sources) + "\n"


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
