"""Loading the YAML files `fx` reads (plans, cols, data, defaults, director/envoy configs, PKI registries)
with bounds that a hostile file cannot get past.

`load_yaml_text` is `yaml.safe_load` on the pure-Python `SafeLoader` (the C loader composes nodes in C,
where these checks cannot hook in; the files are small), plus:

* text over `MAX_YAML_CHARS` and characters YAML forbids (NUL and other control characters) are refused
  before parsing;
* a mapping that repeats a key (at any level) is refused, naming both lines;
* collections nested deeper than `MAX_DEPTH` are refused while composing, before Python's recursion limit;
* alias uses are counted (`MAX_ALIASES`), and so is the size of the document with every alias expanded
  (`MAX_NODES`), node by node as it is composed: a "billion laughs" document fails after a few hundred
  nodes instead of growing without end in whatever walks the result; an alias to a node that contains it
  (a recursive document) is refused too.

Every failure is a `PlanError` whose text is one line: `display: invalid YAML at line L, column C: problem`.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.events import AliasEvent, MappingStartEvent, SequenceStartEvent
from yaml.nodes import MappingNode, Node, ScalarNode

from openfl_cli.errors import PlanError

MAX_YAML_CHARS = 8 * 1024 * 1024
MAX_DEPTH = 64
MAX_ALIASES = 10_000
MAX_NODES = 1_000_000
_KEY_SHOWN = 60

# the characters YAML 1.1 does not allow in a stream (PyYAML's Reader.NON_PRINTABLE)
_FORBIDDEN = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class YamlSyntaxError(PlanError):
    """The text is not YAML at all (a scanner, parser or constructor error), as opposed to a refusal
    of well-formed YAML that breaks a bound; readers that accept another format may fall back on it."""


class _Refused(ComposerError):
    """Well-formed YAML that breaks one of the bounds."""


class _BoundedLoader(yaml.SafeLoader):
    """`SafeLoader` that bounds depth, alias uses and expanded size, and refuses duplicate keys."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._reset_counts()

    def _reset_counts(self) -> None:
        self._depth = 0
        self._aliases = 0
        self._expanded = 0  # nodes in the document with every alias expanded, so far
        self._sizes: dict[Node, int] = {}  # expanded size of each finished node

    def compose_document(self) -> Node | None:
        self._reset_counts()
        try:
            return super().compose_document()
        finally:
            self._sizes = {}

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise _refusal(event.start_mark, f"more than {MAX_ALIASES} alias uses")
            target = super().compose_node(parent, index)
            size = self._sizes.get(target) if target is not None else 0
            if size is None:
                raise _refusal(event.start_mark, f"alias *{event.anchor} refers to a node that contains it")
            self._count(size, event.start_mark)
            return target
        collection = isinstance(event, (MappingStartEvent, SequenceStartEvent))
        if collection:
            self._depth += 1
            if self._depth > MAX_DEPTH:
                raise _refusal(event.start_mark, f"collections nested more than {MAX_DEPTH} deep")
        try:
            self._count(1, event.start_mark)
            node = super().compose_node(parent, index)
        finally:
            if collection:
                self._depth -= 1
        if node is not None:
            self._sizes[node] = self._size_of(node)
        return node

    def _count(self, nodes: int, mark: Any) -> None:
        self._expanded += nodes
        if self._expanded > MAX_NODES:
            raise _refusal(mark, f"more than {MAX_NODES} nodes once its aliases are expanded")

    def _size_of(self, node: Node) -> int:
        if isinstance(node, ScalarNode):
            return 1
        children = (
            [part for pair in node.value for part in pair] if isinstance(node, MappingNode) else node.value
        )
        return 1 + sum(self._sizes.get(child, 1) for child in children)

    def compose_mapping_node(self, anchor: Any) -> MappingNode:  # the stubs call the anchor a dict
        node = super().compose_mapping_node(anchor)
        seen: dict[Any, ScalarNode] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue  # a collection as a key is refused when constructed; `<<` merges may repeat
            key = self.construct_object(key_node)
            try:
                first = seen.setdefault(key, key_node)
            except TypeError:
                continue
            if first is not key_node:
                shown = repr(key) if len(repr(key)) <= _KEY_SHOWN else repr(key)[:_KEY_SHOWN] + "..."
                raise _refusal(
                    key_node.start_mark,
                    f"duplicate key {shown} at line {key_node.start_mark.line + 1} "
                    f"(first at line {first.start_mark.line + 1})",
                )
        return node


def _refusal(mark: Any, problem: str) -> _Refused:
    return _Refused(None, None, problem, mark)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _position(text: str, index: int) -> str:
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return f"line {line}, column {column}"


def load_yaml_text(text: str, display: str) -> Any:
    """The data of the single YAML document `text`, or a one-line `PlanError` naming `display`."""
    if len(text) > MAX_YAML_CHARS:
        raise PlanError(
            display, None, f"too large for a YAML file: {len(text)} characters, at most {MAX_YAML_CHARS}"
        )
    bad = _FORBIDDEN.search(text)
    if bad is not None:
        raise PlanError(
            display,
            None,
            f"invalid YAML at {_position(text, bad.start())}: "
            f"control character U+{ord(bad.group()):04X} is not allowed in YAML",
        )
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    except _Refused as error:
        raise _plan_error(error, display, PlanError) from None
    except yaml.MarkedYAMLError as error:
        raise _plan_error(error, display, YamlSyntaxError) from None
    except yaml.reader.ReaderError as error:
        raise YamlSyntaxError(
            display, None, f"invalid YAML at {_position(text, error.position)}: {_one_line(error.reason)}"
        ) from None
    except yaml.YAMLError as error:
        raise YamlSyntaxError(display, None, f"invalid YAML: {_one_line(str(error))}") from None
    except RecursionError:
        raise PlanError(display, None, "invalid YAML: nested too deeply") from None
    finally:
        loader.dispose()


def _plan_error(error: yaml.MarkedYAMLError, display: str, kind: type[PlanError]) -> PlanError:
    mark = error.problem_mark or error.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
    problem = _one_line(error.problem or error.context or "syntax error")
    if error.context and problem.startswith("but "):
        problem = f"{_one_line(error.context)} {problem}"  # "expected a single document ... but found ..."
    return kind(display, None, f"invalid YAML at {where}: {problem}")
