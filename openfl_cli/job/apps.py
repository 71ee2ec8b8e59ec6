"""What a job holds per target: the server's app, one app for all clients (`@ALL`, from
`to_clients`) and one per named site. The exporter turns them into one plan: the server's into the
aggregator's settings, the clients' into the task runner's settings (a site's own objects as
overrides under `sites`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SERVER = "server"
ALL_SITES = "@ALL"


@dataclass
class Exported:
    """An object exported by class path and settings."""

    comp_id: str
    obj: Any
    template: str
    settings: dict[str, Any]
    shipped: Path | None  # its module file, copied to src/

    def entry(self) -> dict[str, Any]:
        return {"template": self.template, "settings": dict(self.settings)}


@dataclass
class Handler:
    """What runs the client's tasks: a script's runner settings, or an executor."""

    comp_id: str
    obj: Any
    settings: dict[str, Any]  # script, script_args, ... or executor
    shipped: Path | None = None


@dataclass
class FilterEntry:
    exported: Exported
    filter_type: str  # FilterType value


@dataclass
class App:
    target: str
    controller: Any = None
    controller_id: str | None = None
    initial_model: dict[str, np.ndarray] | None = None
    handler: Handler | None = None
    filters: list[FilterEntry] = field(default_factory=list)
    components: dict[str, Exported] = field(default_factory=dict)
    resources: list[Path] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The app's name in meta.json's deploy map, as FLARE names them."""
        if self.target == SERVER:
            return "app_server"
        return "app" if self.target == ALL_SITES else f"app_{self.target}"

    @property
    def is_client(self) -> bool:
        return self.target != SERVER

    def filter_entries(self, filter_type: str) -> list[dict[str, Any]]:
        return [item.exported.entry() for item in self.filters if item.filter_type == filter_type]

    def holds(self, obj: Any) -> bool:
        return (
            any(item.obj is obj for item in self.components.values())
            or any(item.exported.obj is obj for item in self.filters)
            or (self.handler is not None and self.handler.obj is obj)
            or self.controller is obj
        )
