"""The settings of a script runner, checked in one place, with a site's own overrides applied.

A FedJob that sends different scripts (or filters) to different sites exports one task runner for all
of them: the common settings, plus `sites: {site-1: {script: ..., ...}}` whose entries replace the
common ones for that site. A plan that fails these checks fails when it is loaded, naming the setting.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from numbers import Integral, Real
from typing import Any

from openfl_cli.client.launch import command_line
from openfl_cli.client.params import check_framework

log = logging.getLogger(__name__)

SAMPLE_COUNT_KEYS = ("NUM_STEPS_CURRENT_ROUND", "sample_count")


@dataclass(frozen=True)
class ScriptSettings:
    """What a site runs (`script`, or an `executor` object `{template, settings}`) and how."""

    script: str | None = None
    script_args: str | Sequence[str] = ""
    launch_external_process: bool = False
    command: str = "python3 -u"
    framework: str = "pytorch"
    initial_model: str | None = None
    task_data_filters: Sequence[Mapping[str, Any]] | None = ()
    task_result_filters: Sequence[Mapping[str, Any]] | None = ()
    executor: Mapping[str, Any] | None = None
    round_timeout: float = 3600.0
    close_timeout: float = 30.0
    total_rounds: int | None = None
    job_id: str | None = None
    device: str | None = None  # "cuda:N": the device this site's script trains on (simulator_run(gpu=))

    def __post_init__(self) -> None:
        if self.executor is None and (not isinstance(self.script, str) or not self.script.strip()):
            raise ValueError(f"script must name the training script, got {self.script!r}")
        if self.executor is not None and self.script:
            raise ValueError("give either script or executor, not both")
        if self.executor is not None and not isinstance(self.executor, Mapping):
            raise ValueError(f"executor must be {{template, settings}}, got {self.executor!r}")
        split_args(self.script_args)
        if not isinstance(self.launch_external_process, bool):
            raise ValueError(
                f"launch_external_process must be true or false, got {self.launch_external_process!r}"
            )
        if not isinstance(self.command, str):
            raise ValueError(f"command must be a string, got {self.command!r}")
        try:
            command_line(self.command, "script.py", [])
        except ValueError as exc:
            raise ValueError(f"command {self.command!r}: {exc}") from None
        object.__setattr__(self, "framework", check_framework(self.framework))
        object.__setattr__(self, "round_timeout", positive("round_timeout", self.round_timeout))
        object.__setattr__(self, "close_timeout", positive("close_timeout", self.close_timeout))
        if self.device is not None and not (isinstance(self.device, str) and self.device.startswith("cuda:")):
            raise ValueError(f"device must be 'cuda:N', got {self.device!r}")
        total = self.total_rounds
        if total is not None and (isinstance(total, bool) or not isinstance(total, Integral) or total < 1):
            raise ValueError(f"total_rounds must be a positive integer, got {total!r}")

    @property
    def args(self) -> list[str]:
        return split_args(self.script_args)

    @classmethod
    def for_site(
        cls, common: Mapping[str, Any], sites: Mapping[str, Mapping[str, Any]] | None, site: str
    ) -> ScriptSettings:
        """The settings of `site`: the common ones with `sites[site]`'s entries in their place, checked
        once merged (a site may bring the script the common settings lack)."""
        if sites is not None and not isinstance(sites, Mapping):
            raise ValueError(f"sites must map site names to settings, got {sites!r}")
        own = (sites or {}).get(site) or {}
        if not isinstance(own, Mapping):
            raise ValueError(f"sites.{site} must be a mapping of settings, got {own!r}")
        names = {item.name for item in fields(cls)}
        ignored = sorted(key for key in own if key not in names)
        if ignored:
            log.warning("script runner of site %s: ignoring the unknown settings %s", site, ignored)
        merged = {**common, **{key: value for key, value in own.items() if key in names}}
        try:
            return cls(**merged)
        except ValueError as exc:
            raise ValueError(f"sites.{site}: {exc}" if own else str(exc)) from None


def split_args(args: str | Sequence[str]) -> list[str]:
    """`script_args` as argv words (a string is split as a shell would)."""
    if isinstance(args, str):
        try:
            return shlex.split(args)
        except ValueError as exc:
            raise ValueError(f"script_args: {exc}") from None
    if not isinstance(args, Sequence) or not all(isinstance(arg, str) for arg in args):
        raise ValueError(f"script_args must be a string or a list of strings, got {args!r}")
    return list(args)


def positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not float(value) > 0:
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


def sample_count(meta: Mapping[str, Any]) -> int:
    """The sample count a script reports in its result's meta (`NUM_STEPS_CURRENT_ROUND` or
    `sample_count`), 1 when it reports none; ValueError for one that is not a count."""
    for key in SAMPLE_COUNT_KEYS:
        if key in meta:
            value = meta[key]
            if (
                isinstance(value, bool)
                or not isinstance(value, Real)
                or not float(value) >= 0
                or not float(value).is_integer()
            ):
                raise ValueError(f"meta[{key!r}] must be a non-negative integer, got {value!r}")
            return int(float(value))
    return 1
