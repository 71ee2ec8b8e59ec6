"""Typed, validated settings of the aggregator, collaborator and network sections, and task specs.

Each dataclass checks its own fields (so building one in code validates too); `parse_settings`
turns a plan mapping into one, naming the bad key.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any, TypeVar

from openfl_cli.plan import checks
from openfl_cli.plan.aliases import FIXED_SETTINGS, IGNORED_SETTINGS
from openfl_cli.plan.files import unknown_key_message

log = logging.getLogger(__name__)


class SettingError(ValueError):
    """A bad value for one field of a settings dataclass."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message


def _checked(default: Any, check: checks.Check) -> Any:
    return field(default=default, metadata={"check": check})


class _Validated:
    def __post_init__(self) -> None:
        for spec in dataclasses.fields(self):  # type: ignore[arg-type]
            try:
                value = spec.metadata["check"](getattr(self, spec.name))
            except ValueError as error:
                raise SettingError(spec.name, str(error)) from None
            object.__setattr__(self, spec.name, value)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]


_optional_callback = checks.optional(checks.callback_path)
_rounds = checks.integer(1, what="an integer >= 1")


@dataclass(frozen=True)
class AggregatorSettings(_Validated):
    init_state_path: str = _checked("save/init.pbuf", checks.text)
    best_state_path: str = _checked("save/best.pbuf", checks.text)
    last_state_path: str = _checked("save/last.pbuf", checks.text)
    rounds_to_train: int = _checked(10, checks.positive_int)
    db_store_rounds: int = _checked(2, _rounds)
    write_logs: bool = _checked(True, checks.boolean)
    persist_checkpoint: bool = _checked(True, checks.boolean)
    persistent_db_path: str = _checked("local_state/tensor.db", checks.text)
    save_native_model: bool = _checked(False, checks.boolean)
    native_model_path: str = _checked("save/native", checks.text)
    best_metric_task: str = _checked("aggregated_model_validation", checks.text)
    best_metric: str = _checked("acc", checks.text)
    best_metric_higher_is_better: bool = _checked(True, checks.boolean)
    log_metric_callback: str | None = _checked(None, _optional_callback)


@dataclass(frozen=True)
class CollaboratorSettings(_Validated):
    use_delta_updates: bool = _checked(False, checks.boolean)
    opt_treatment: str = _checked("RESET", checks.choice("RESET", "CONTINUE_LOCAL", "CONTINUE_GLOBAL"))
    db_store_rounds: int = _checked(1, _rounds)
    log_metric_callback: str | None = _checked(None, _optional_callback)


@dataclass(frozen=True)
class NetworkSettings(_Validated):
    agg_addr: str = _checked("auto", checks.agg_addr)
    agg_port: int | str = _checked("auto", checks.agg_port)
    bind_addr: str = _checked("0.0.0.0", checks.ip_address)
    use_tls: bool = _checked(True, checks.boolean)
    require_client_auth: bool = _checked(True, checks.boolean)
    client_reconnect_interval: float = _checked(5, checks.positive_number())
    client_reconnect_timeout: float = _checked(600, checks.positive_number())
    cert_folder: str = _checked("cert", checks.text)

    @property
    def resolved(self) -> bool:
        """True once `fx plan initialize` replaced `auto` by a real address and port."""
        return self.agg_addr != "auto" and self.agg_port != "auto"


@dataclass(frozen=True)
class TaskSpec:
    """One task of the plan: the runner method to call, its keyword arguments, its aggregation."""

    name: str
    function: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    aggregation: tuple[str, dict[str, Any]] | None = None


S = TypeVar("S", AggregatorSettings, CollaboratorSettings, NetworkSettings)


def parse_settings(cls: type[S], section: str, raw: dict[str, Any]) -> S:
    """Build `cls` from a section's settings (OpenFL's old names already renamed by the loader).

    Raises SettingError(key, message) naming the setting.
    """
    names = {spec.name for spec in dataclasses.fields(cls)}
    ignored = IGNORED_SETTINGS.get(section, {})
    fixed = FIXED_SETTINGS.get(section, {})
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key in fixed:
            _check_fixed(key, value, *fixed[key])
        elif key in ignored:
            if value != ignored[key]:
                log.warning("%s.settings.%s is an OpenFL setting that fx ignores", section, key)
        elif key not in names:
            raise SettingError(key, unknown_key_message(key, names))
        else:
            values[key] = value
    return cls(**values)


def _check_fixed(key: str, value: Any, supported: str, refusal: str) -> None:
    """An OpenFL setting with the one value fx supports (compared as OpenFL does, ignoring case)."""
    if not isinstance(value, str) or value.lower() != supported:
        raise SettingError(key, f"expected {supported!r}, got {value!r}: {refusal}")
