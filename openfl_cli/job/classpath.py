"""Where an exported object's class comes from on the other machines.

Classes of an installed package (this one, or anything under site-packages or the standard library)
keep their own dotted path: the sites must have the package installed (list it in
`job.requirements`). A class of the user's own code is shipped: its module file goes to the
workspace's `src/` and the class is named `src.<module>.<Class>`, which the plan imports from the
workspace. A class defined in the job script itself (`__main__`) is shipped the same way, so that
script must keep its job-building code under `if __name__ == "__main__":`.
"""

from __future__ import annotations

import inspect
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from openfl_cli.errors import UsageError

WORKSPACE_PACKAGE = "src"


@dataclass(frozen=True)
class ClassPath:
    template: str  # what the plan names
    shipped: Path | None  # the module file copied to src/, when the class is the user's


def _installed_roots() -> list[Path]:
    names = ("stdlib", "platstdlib", "purelib", "platlib")
    paths = sysconfig.get_paths()
    roots = {Path(paths[name]).resolve() for name in names if name in paths}
    roots.update(
        Path(entry).resolve() for entry in sys.path if entry.endswith(("site-packages", "dist-packages"))
    )
    return sorted(roots)


def _is_installed(file: Path) -> bool:
    resolved = file.resolve()
    return any(root == resolved or root in resolved.parents for root in _installed_roots())


def class_path(cls: type) -> ClassPath:
    """The plan's template for `cls`, and the module file to ship with the job (None when installed)."""
    name = cls.__qualname__
    if "<locals>" in name or "." in name:
        raise UsageError(
            f"{cls.__module__}.{name}: the class is defined inside a function or another class; define it"
            " at the top level of a module so that the sites can import it"
        )
    module_name = cls.__module__
    if module_name == "openfl_cli" or module_name.startswith("openfl_cli."):
        return ClassPath(f"{module_name}.{name}", None)
    module = sys.modules.get(module_name)
    file = getattr(module, "__file__", None) if module is not None else None
    if file is None:
        try:
            file = inspect.getsourcefile(cls)
        except TypeError:
            file = None
    if file is None:
        if module_name == "builtins":
            raise UsageError(f"{name}: a built-in type cannot be exported as a component")
        return ClassPath(f"{module_name}.{name}", None)
    path = Path(file)
    if module_name != "__main__" and _is_installed(path):
        return ClassPath(f"{module_name}.{name}", None)
    if path.suffix != ".py":
        raise UsageError(f"{module_name}.{name}: its module {path} is not a .py file and cannot be shipped")
    stem = path.stem
    if stem == "__init__":
        raise UsageError(
            f"{module_name}.{name}: classes of a package's __init__.py cannot be shipped alone;"
            " move the class into a module of its own"
        )
    if not stem.isidentifier():
        raise UsageError(f"{module_name}.{name}: the module file name {path.name} is not importable")
    return ClassPath(f"{WORKSPACE_PACKAGE}.{stem}.{name}", path.resolve())
