"""Logging set-up shared by every command."""

from __future__ import annotations

import logging
import sys

LEVELS = ("debug", "info", "warning", "error")


def setup_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper()))
    # grpc and urllib chatter is noise unless the user asked for debug
    if level != "debug":
        for noisy in ("grpc", "urllib3", "matplotlib", "PIL"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
