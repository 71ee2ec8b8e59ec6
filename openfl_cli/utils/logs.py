"""Logging set-up shared by every command."""

from __future__ import annotations

import logging
import sys

LEVELS = ("debug", "info", "warning", "error")


def setup_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    # milliseconds: a round's steps (download, train, upload) are often well under a second apart
    line = "%(asctime)s.%(msecs)03d %(levelname)-7s %(name)s: %(message)s"
    handler.setFormatter(logging.Formatter(line, "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper()))
    # grpc and urllib chatter is noise unless the user asked for debug
    if level != "debug":
        for noisy in ("grpc", "urllib3", "matplotlib", "PIL"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
