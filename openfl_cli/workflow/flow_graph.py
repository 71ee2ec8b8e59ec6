"""A flow's graph: its steps (with their placement) and the transitions its steps write, as data, as
Graphviz DOT text, and as a picture drawn by Graphviz's `dot` where it is installed."""

from __future__ import annotations

import inspect
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openfl_cli.errors import UsageError
from openfl_cli.workflow.graph import check_flow, joins_of, next_calls
from openfl_cli.workflow.placement import Placement

PICTURE_FORMATS = ("svg", "png", "pdf")
_FILL = {"aggregator": "#dbe8f6", "collaborator": "#e2f0d9"}


@dataclass(frozen=True)
class StepNode:
    name: str
    placement: Placement
    join: bool  # collaborators return here with their inputs
    doc: str
    line: int | None


@dataclass(frozen=True)
class Transition:
    source: str
    target: str
    foreach: bool  # fans out to the collaborators
    foreach_attribute: str | None  # the attribute it names, where the step spells it out
    loop: bool  # goes back to a step already on the way from start


@dataclass(frozen=True)
class FlowGraph:
    flow: str
    steps: dict[str, StepNode]  # in the order they are reached from start
    transitions: tuple[Transition, ...]
    file: str

    def to_dot(self) -> str:
        lines = [
            f'digraph "{self.flow}" {{',
            '  graph [rankdir=TB, fontname="Helvetica", labelloc=t, label="' + self.flow + '"];',
            '  node [shape=box, style="rounded,filled", fontname="Helvetica"];',
            '  edge [fontname="Helvetica", fontsize=10];',
        ]
        for node in self.steps.values():
            kind = "join" if node.join else node.placement
            label = f"{node.name}\\n@{node.placement}" + (" (join)" if node.join else "")
            extra = ", peripheries=2" if node.join else ""
            lines.append(
                f'  "{node.name}" [label="{label}", fillcolor="{_FILL[node.placement]}"{extra}]; // {kind}'
            )
        for edge in self.transitions:
            attributes = []
            if edge.foreach:
                label = ("foreach " + (edge.foreach_attribute or "")).strip()
                attributes += [f'label="{label}"', "penwidth=2"]
            if edge.loop:
                attributes += ["style=dashed", "constraint=false"]
                if not edge.foreach:
                    attributes.append('label="loop"')
            suffix = f" [{', '.join(attributes)}]" if attributes else ""
            lines.append(f'  "{edge.source}" -> "{edge.target}"{suffix};')
        lines.append("}")
        return "\n".join(lines) + "\n"

    def write(self, path: str | Path) -> Path:
        """Write the graph to `path`: `.dot` is the DOT text; `.svg`, `.png` or `.pdf` is a picture,
        drawn by Graphviz's `dot` from the DOT text written beside it. Without `dot`, says so and
        returns the DOT file."""
        target = Path(path)
        kind = target.suffix.lstrip(".").lower()
        if kind != "dot" and kind not in PICTURE_FORMATS:
            raise UsageError(
                f"{target}: the graph is written as .dot, .svg, .png or .pdf, not {target.suffix!r}"
            )
        dot_file = target if kind == "dot" else target.with_suffix(".dot")
        dot_file.write_text(self.to_dot())
        if kind == "dot":
            return dot_file
        drawn = _draw(self.to_dot(), kind)
        if drawn is None:
            print(
                f"Graphviz's dot is not installed: the graph of {self.flow} is in {dot_file}"
                f" (install graphviz, e.g. apt install graphviz, to draw {target.name})"
            )
            return dot_file
        target.write_bytes(drawn)
        return target

    def _repr_svg_(self) -> str | None:
        """Jupyter shows the picture where `dot` is installed."""
        try:
            drawn = _draw(self.to_dot(), "svg")
        except UsageError:
            return None
        return None if drawn is None else drawn.decode("utf-8")

    def metaflow_info(self) -> dict[str, Any]:
        """The `_graph_info` artifact Metaflow's client reads for Step.parent_steps / child_steps."""
        steps: dict[str, Any] = {}
        for node in self.steps.values():
            out = [t for t in self.transitions if t.source == node.name]
            targets = list(dict.fromkeys(t.target for t in out))
            if node.name == "end":
                kind = "end"
            elif node.join:
                kind = "join"
            elif len(targets) > 1:
                kind = "split-switch"
            elif any(t.foreach for t in out):
                kind = "split-foreach"
            else:
                kind = "start" if node.name == "start" else "linear"
            info: dict[str, Any] = {
                "name": node.name,
                "type": kind,
                "line": node.line,
                "source_file": self.file,
                "doc": node.doc,
                "decorators": [],
                "next": targets,
                "node_info": {"placement": node.placement},
            }
            attribute = next((t.foreach_attribute for t in out if t.foreach and t.foreach_attribute), None)
            if attribute:
                info["foreach_artifact"] = attribute
            steps[node.name] = info
        return {
            "file": Path(self.file).name,
            "start_step": "start",
            "end_step": "end",
            "parameters": [],
            "constants": [],
            "steps": steps,
            "graph_structure": list(self.steps),
            "doc": "",
            "decorators": [],
            "extensions": {"installed": {}},
        }


def _draw(dot_text: str, kind: str) -> bytes | None:
    """The picture Graphviz's dot draws of `dot_text`; None where dot is not installed."""
    program = shutil.which("dot")
    if program is None:
        return None
    drawn = subprocess.run([program, f"-T{kind}"], input=dot_text.encode(), capture_output=True, timeout=60)
    if drawn.returncode != 0:
        last = drawn.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
        raise UsageError(f"dot failed to draw the {kind} picture: {last[0]}")
    return drawn.stdout


def flow_graph(flow_class: type) -> FlowGraph:
    """The graph of a flow class, read from its steps' source (checked first, as before a run)."""
    steps = check_flow(flow_class)
    calls = next_calls(flow_class, steps)
    joins = joins_of(steps, calls)
    outgoing: dict[str, list[Any]] = {}
    for call in calls:
        outgoing.setdefault(call.source, []).append(call)
    order: list[str] = []
    on_path: set[str] = set()
    transitions: list[Transition] = []

    def visit(step: str) -> None:  # depth first: an edge to a step on the current path is a loop
        order.append(step)
        on_path.add(step)
        for call in outgoing.get(step, []):
            loop = call.target in on_path
            transitions.append(Transition(step, call.target, call.has_foreach, call.foreach, loop))
            if call.target not in order:
                visit(call.target)
        on_path.discard(step)

    visit("start")
    order += [step for step in sorted(steps) if step not in order]  # written but never reached
    nodes = {}
    for name in order:
        method = getattr(flow_class, name)
        try:
            line: int | None = inspect.getsourcelines(method)[1]
        except (OSError, TypeError):
            line = None
        nodes[name] = StepNode(name, steps[name], name in joins, inspect.getdoc(method) or "", line)
    try:
        file = inspect.getsourcefile(flow_class) or ""
    except TypeError:
        file = ""
    return FlowGraph(flow_class.__name__, nodes, tuple(transitions), file)
