"""`director_config.yaml`: where the director listens, how often envoys report, and the aggregator's
private attributes (read with the bounded safe loader; every key checked, errors name the file and key)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openfl_cli.errors import PlanError
from openfl_cli.plan.files import unknown_key_message
from openfl_cli.workflow.service_config import PrivateAttributesSpec, private_attributes_spec, read_config

DEFAULT_PORT = 50050
SETTINGS = {"listen_host", "listen_port", "envoy_health_check_period", "review_timeout"}
SECTIONS = {"settings", "aggregator"}


@dataclass(frozen=True)
class DirectorConfig:
    path: Path
    listen_host: str
    listen_port: int
    health_period: float  # seconds between an envoy's health reports
    review_timeout: float  # how long an experiment waits for its envoys' decisions
    aggregator: PrivateAttributesSpec


def load_director_config(path: str | Path) -> DirectorConfig:
    path = Path(path).expanduser().absolute()
    document = read_config(path)
    where = str(path)
    for key in document:
        if key not in SECTIONS:
            raise PlanError(where, str(key), unknown_key_message(str(key), SECTIONS, "section"))
    settings = document.get("settings") or {}
    if not isinstance(settings, dict):
        raise PlanError(where, "settings", "expected a mapping")
    for key in settings:
        if key not in SETTINGS:
            raise PlanError(where, f"settings.{key}", unknown_key_message(str(key), SETTINGS))
    host = settings.get("listen_host", "localhost")
    if not isinstance(host, str) or not host:
        raise PlanError(where, "settings.listen_host", f"expected a host name or address, got {host!r}")
    port = settings.get("listen_port", DEFAULT_PORT)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise PlanError(where, "settings.listen_port", f"expected a port 0..65535, got {port!r}")
    return DirectorConfig(
        path=path,
        listen_host=host,
        listen_port=port,
        health_period=_seconds(settings, "envoy_health_check_period", 5.0, where),
        review_timeout=_seconds(settings, "review_timeout", 24 * 3600.0, where),
        aggregator=private_attributes_spec(document.get("aggregator"), where, "aggregator", path.parent),
    )


def _seconds(settings: dict[str, Any], key: str, default: float, where: str) -> float:
    value = settings.get(key, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise PlanError(where, f"settings.{key}", f"expected a number of seconds > 0, got {value!r}")
    return float(value)
