"""`fx plan initialize`: resolve the aggregator's address and port, and write the initial model."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from openfl_cli.errors import FxError, PlanError, UsageError
from openfl_cli.plan.files import read_yaml
from openfl_cli.plan.plan import Plan
from openfl_cli.utils.fs import atomic_write_text
from openfl_cli.utils.safe_yaml import load_yaml_text

if TYPE_CHECKING:
    from openfl_cli.data.base import DataLoader

log = logging.getLogger(__name__)

PORT_RANGE = (49152, 60999)  # the dynamic/private range, minus Linux's default ephemeral top


@dataclass(frozen=True)
class InitializeResult:
    plan_path: Path
    agg_addr: str
    agg_port: int
    init_state_path: Path
    tensor_count: int
    plan_hash: str
    input_weights: Path | None


def stable_port(plan_hash: str) -> int:
    """The same plan always gets the same port, spread over the private range."""
    low, high = PORT_RANGE
    digest = hashlib.sha384(f"fx-agg-port:{plan_hash}".encode()).digest()
    return low + int.from_bytes(digest[:8], "big") % (high - low + 1)


def resolve_address(explicit: str | None) -> str:
    from openfl_cli.utils.names import check_fqdn, machine_fqdn

    return check_fqdn(explicit if explicit else machine_fqdn())


def initialize(
    plan_path: str | Path = "plan/plan.yaml",
    cols_path: str | Path = "plan/cols.yaml",
    data_path: str | Path = "plan/data.yaml",
    agg_addr: str | None = None,
    input_weights: str | Path | None = None,
    input_shape: tuple[int, ...] | None = None,
) -> InitializeResult:
    """`input_shape` (one sample, without the batch axis) builds the model without any data loader."""
    plan = Plan.load(plan_path, cols_path, data_path)
    network = plan.network_settings
    addr = resolve_address(agg_addr) if agg_addr or network.agg_addr == "auto" else str(network.agg_addr)
    port = stable_port(plan.hash) if network.agg_port == "auto" else int(network.agg_port)

    # build the model before touching any file, so a broken runner leaves the workspace as it was
    runner = plan.build_task_runner(_loader_for_initialize(plan, input_shape))
    tensors = runner.get_tensor_dict(with_opt_vars=False)
    if not tensors:
        raise UsageError(f"the task runner {plan.config['task_runner']['template']} has no tensors")

    from openfl_cli.tensors.snapshot import load_snapshot, save_snapshot

    source = Path(input_weights) if input_weights else None
    if source is not None:
        if not source.is_file():
            raise UsageError(f"--input-weights: {source}: file not found")
        given = load_snapshot(source).tensors
        _check_same_layout(given, tensors, str(source))
        tensors = given

    if (addr, port) != (network.agg_addr, network.agg_port):
        write_network_back(Path(plan_path), str(plan_path), addr, port)
        plan = Plan.load(plan_path, cols_path, data_path)
    target = plan.resolve_path(plan.aggregator_settings.init_state_path)
    save_snapshot(target, tensors, round_number=0)
    return InitializeResult(plan.plan_path, addr, port, target, len(tensors), plan.hash, source)


def _loader_for_initialize(plan: Plan, input_shape: tuple[int, ...] | None) -> DataLoader:
    """What the task runner gets to build its model: the input shape alone, when given; else the
    plan's data loader, built only if the runner asks it for something (the initial weights need no
    data, and the aggregator's machine usually holds none)."""
    if input_shape is not None:
        from openfl_cli.data.shape_only import ShapeOnlyDataLoader

        return ShapeOnlyDataLoader(input_shape)
    from openfl_cli.data.deferred import DeferredDataLoader

    plan.check_templates()  # the data loader's template and settings are checked all the same
    return DeferredDataLoader(lambda: _first_data_loader(plan))


def _first_data_loader(plan: Plan) -> DataLoader:
    first = next(iter(plan.data_paths), None)
    try:
        return plan.build_data_loader(first) if first else plan.build_data_loader("", data_path="1")
    except PlanError:
        raise
    except (FxError, OSError) as error:  # no data here: the aggregator's machine usually holds none
        raise UsageError(
            f"{error}; without data on this machine, build the initial model from the input shape:"
            " fx plan initialize --input-shape [C,H,W]"
        ) from None


def _check_same_layout(given: dict[str, Any], expected: dict[str, Any], name: str) -> None:
    problems: list[str] = []
    missing = sorted(set(expected) - set(given))
    extra = sorted(set(given) - set(expected))
    if missing:
        problems.append(f"missing {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    if extra:
        problems.append(f"unexpected {', '.join(extra[:5])}{' ...' if len(extra) > 5 else ''}")
    for key in sorted(set(given) & set(expected)):
        ours, theirs = expected[key], given[key]
        if tuple(ours.shape) != tuple(theirs.shape) or ours.dtype != theirs.dtype:
            problems.append(
                f"{key}: {theirs.dtype}{list(theirs.shape)}, the model has {ours.dtype}{list(ours.shape)}"
            )
    if problems:
        raise UsageError(f"--input-weights {name} does not fit the model: " + "; ".join(problems[:8]))


def write_network_back(path: Path, display: str, addr: str, port: int) -> None:
    """Set network.settings.agg_addr/agg_port in the plan file, keeping its text and comments if possible."""
    text = path.read_text(encoding="utf-8")
    document = read_yaml(path, display) or {}
    network = document.get("network")
    if network is None:
        network = document["network"] = {}
    if not isinstance(network, dict):
        raise PlanError(display, "network", "expected a mapping")
    if not isinstance(network.get("settings"), dict):
        network["settings"] = {}
    network["settings"].update(agg_addr=addr, agg_port=port)
    edited = _edit_in_place(text, {"agg_addr": addr, "agg_port": port})
    if edited is not None:
        try:
            if load_yaml_text(edited, display) != document:
                edited = None
        except PlanError:
            edited = None
    if edited is None:
        edited = yaml.safe_dump(document, sort_keys=False, default_flow_style=False)
    atomic_write_text(path, edited)
    log.info("wrote agg_addr %s and agg_port %d into %s", addr, port, display)


def _edit_in_place(text: str, values: dict[str, Any]) -> str | None:
    """Replace `key: value` lines when each key occurs exactly once; None when that is not so."""
    for key, value in values.items():
        pattern = re.compile(rf"^(\s*{key}\s*:\s*)([^#\n]*?)(\s*(#.*)?)$", re.MULTILINE)
        if len(pattern.findall(text)) != 1:
            return None

        def replacement(m: re.Match[str], v: Any = value) -> str:
            return f"{m.group(1)}{v}{m.group(3)}"

        text = pattern.sub(replacement, text)
    return text
