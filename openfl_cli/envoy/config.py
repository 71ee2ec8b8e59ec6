"""`envoy_config.yaml`: per envoy name, its private attributes and its plan review policy.

```yaml
env_one:
  private_attributes: private_attributes.env_one_attrs
  plan_review: review      # or accept (the default): whether its admin decides on each experiment
```
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from openfl_cli.errors import PlanError
from openfl_cli.workflow.service_config import PrivateAttributesSpec, private_attributes_spec, read_config

POLICIES = ("accept", "review")


@dataclass(frozen=True)
class EnvoyConfig:
    path: Path
    name: str
    private: PrivateAttributesSpec
    plan_review: str  # "accept": every experiment runs; "review": each waits for `fx envoy accept`


def load_envoy_config(path: str | Path, name: str) -> EnvoyConfig:
    path = Path(path).expanduser().absolute()
    document = read_config(path)
    where = str(path)
    if name not in document:
        known = ", ".join(sorted(map(str, document))) or "none"
        raise PlanError(where, None, f"no section for envoy {name!r} (sections: {known})")
    section = document[name] or {}
    if not isinstance(section, dict):
        raise PlanError(where, name, f"expected a mapping, got {type(section).__name__}")
    policy = section.get("plan_review", "accept")
    if policy not in POLICIES:
        raise PlanError(
            where, f"{name}.plan_review", f"expected one of {', '.join(POLICIES)}, got {policy!r}"
        )
    private = private_attributes_spec(section, where, name, path.parent, frozenset({"plan_review"}))
    return EnvoyConfig(path, name, private, str(policy))
