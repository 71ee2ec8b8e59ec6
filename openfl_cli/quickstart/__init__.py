"""`fx quickstart`: the documented multi-node flow, run on one machine with real processes."""

from openfl_cli.quickstart.flow import QuickstartOptions, run_quickstart

__all__ = ["QuickstartOptions", "run_quickstart"]
