"""What fx does around importing a deep-learning framework: name the extra to install when one is
missing, and keep TensorFlow's C++ start-up logs out of a CPU-only run's output.

Nothing here imports a framework; it only looks at the environment and the import machinery.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

# top-level module -> the extra of openfl-cli that installs it
EXTRAS = {"keras": "tensorflow", "tensorflow": "tensorflow", "torch": "torch", "jax": "jax", "jaxlib": "jax"}
_KERAS_BACKENDS = (
    " (Keras runs on KERAS_BACKEND=tensorflow unless you set it; for KERAS_BACKEND=jax install"
    " 'openfl-cli[jax]')"
)

LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL"
# TensorFlow's C++ lines that say nothing on a machine without a GPU, printed before its log level
# applies (the absl pre-initialization lines) or at the first operation
NOISE = re.compile(
    r"All log messages before absl::InitializeLog|cudart_stub\.cc|failed call to cuInit|"
    r"cuda_(?:platform|driver|diagnostics)\.cc|oneDNN custom operations|cpu_feature_guard\.cc|"
    r"rebuild TensorFlow with the appropriate compiler flags|TF-TRT Warning|"
    r"Unable to register cu(?:DNN|FFT|BLAS) factory|computation placer already registered"
)
_chosen_by_fx = False  # True once fx set the log level itself (the user had not)


def install_hint(missing: str | None) -> str:
    """'; install it with: pip install ...' when `missing` (a module name) is a framework fx knows."""
    top = (missing or "").split(".")[0]
    extra = EXTRAS.get(top)
    if extra is None:
        return ""
    hint = f"; install it with: pip install 'openfl-cli[{extra}]'"
    return hint + _KERAS_BACKENDS if top in ("keras", "tensorflow") else hint


def _has_nvidia_device() -> bool:
    return Path("/dev/nvidiactl").exists() or Path("/dev/nvidia0").exists()


def quiet_tensorflow_defaults() -> bool:
    """Choose TensorFlow's C++ log level unless the user did: errors only on a machine with an NVIDIA
    device (a failed cuInit there matters), nothing below fatal without one. True when fx chose it."""
    global _chosen_by_fx
    if LOG_LEVEL not in os.environ:
        os.environ[LOG_LEVEL] = "2" if _has_nvidia_device() else "3"
        _chosen_by_fx = True
    return _chosen_by_fx


@contextlib.contextmanager
def tensorflow_import() -> Iterator[None]:
    """Wrap code that may import TensorFlow for the first time (Keras, a workspace's task runner).

    With fx's log level, the lines TensorFlow writes to file descriptor 2 while it loads are held
    back and written out after, without the known start-up noise; the user's own level leaves
    everything as it is.
    """
    # only before TensorFlow's first import, and only where it is installed: the level is left unset
    # for everything else (training scripts this process starts inherit its environment)
    if "tensorflow" in sys.modules or not _installed("tensorflow") or not quiet_tensorflow_defaults():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = [
                line
                for line in held.read().decode("utf-8", "replace").splitlines(keepends=True)
                if not NOISE.search(line)
            ]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
