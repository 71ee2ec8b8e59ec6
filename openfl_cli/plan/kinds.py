"""What each plan section's template must build: a class of that section's kind.

A template is imported, then checked here before anything is called, so a plan cannot turn a section
into an arbitrary call (`compression_pipeline.template: os.system` with a `command` setting). A class
is of a kind when it defines every method the participants call on that kind (fx's base class of the
kind does; a class written without it may too).
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Kind:
    """`name`: how errors call it; `base`: fx's class of that kind (named in errors); `members`: the
    methods and properties participants use on it."""

    name: str
    base: str
    members: tuple[str, ...]

    def admits(self, target: Any) -> bool:
        return inspect.isclass(target) and all(hasattr(target, member) for member in self.members)

    def expected(self) -> str:
        article = "an" if self.name[0] in "aeiou" else "a"
        return f"expected {article} {self.name} class (like {self.base})"

    def refusal(self, template: str, target: Any) -> str:
        found = f"a class without {', '.join(m for m in self.members if not hasattr(target, m))}"
        if not inspect.isclass(target):
            found = f"a {type(target).__name__}, not a class"
        return f"{self.expected()}, got {template}: {found}"


DATA_LOADER = Kind(
    "data loader",
    "openfl_cli.data.base.DataLoader",
    ("get_train_loader", "get_valid_loader", "get_train_data_size", "get_valid_data_size"),
)
TASK_RUNNER = Kind(
    "task runner",
    "openfl_cli.runners.base.TaskRunner",
    ("get_tensor_dict", "set_tensor_dict", "rebuild_model"),
)
ASSIGNER = Kind("task assigner", "openfl_cli.federation.assigner.Assigner", ("tasks", "bind", "tasks_for"))
COMPRESSION_PIPELINE = Kind(
    "compression pipeline", "openfl_cli.tensors.pipelines.CompressionPipeline", ("encode", "is_lossless")
)
STRAGGLER_POLICY = Kind(
    "straggler handling policy",
    "openfl_cli.federation.straggler.StragglerPolicy",
    ("round_open", "can_close", "next_deadline"),
)
AGGREGATION_FUNCTION = Kind(
    "aggregation function",
    "openfl_cli.federation.aggregation.function.AggregationFunction",
    ("begin_round", "accumulator", "add", "commit", "remove", "end_round", "abort_round", "staging_array"),
)

SECTION_KINDS: dict[str, Kind] = {
    "data_loader": DATA_LOADER,
    "task_runner": TASK_RUNNER,
    "assigner": ASSIGNER,
    "compression_pipeline": COMPRESSION_PIPELINE,
    "straggler_handling_policy": STRAGGLER_POLICY,
    "tasks": AGGREGATION_FUNCTION,  # tasks.<name>.aggregation_type
}


def kind_of(key: tuple[str, ...]) -> Kind | None:
    """The kind the template at plan key `key` (a section, or tasks.<name>.aggregation_type) builds."""
    return SECTION_KINDS.get(key[0]) if key else None


def standard_library_refusal(key: tuple[str, ...], template: str) -> str | None:
    """Why `template` cannot build the section at `key`, known without importing it: Python's standard
    library holds no class of any plan kind (`os.system`, `subprocess.Popen`). None when that is not so."""
    kind = kind_of(key)
    if kind is None or template.split(".")[0] not in sys.stdlib_module_names:
        return None
    return f"{kind.expected()}, got {template}: Python's standard library has no {kind.name}"
