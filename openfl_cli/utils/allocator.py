"""glibc malloc tuning for the two long-running processes, which allocate model-sized memory every round.

The aggregator must stay within a memory bound whatever the number of collaborators, so its freed
tensor memory goes back where the next round finds it or back to the kernel:
- one arena (M_ARENA_MAX = 1): glibc otherwise gives each allocating thread its own arena and keeps
  freed blocks there; with one gRPC thread per collaborator, each holding an upload's tensors, the
  resident size grew by about a model per collaborator;
- a fixed mmap threshold above one transport chunk: larger blocks (tensors) are mapped and unmapped
  exactly, instead of leaving holes in the heap that the resident size keeps; chunk-sized messages
  still recycle heap memory.

A collaborator receives, copies and sends a whole model every round. By default glibc returns large
freed blocks to the kernel (munmap, heap trimming), so the next round's buffers of the same sizes come
back as fresh pages: a page fault and a zeroed page per 4 KiB make copying 100 MB into new buffers about
four times slower than into reused memory. Its thresholds keep that memory for the next round; the
process stays at about its peak round's size, which it reaches again every round anyway.

Only glibc on Linux is tuned; elsewhere this is a no-op. A user's own MALLOC_* or GLIBC_TUNABLES
environment settings win: nothing is changed then.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
from collections.abc import Callable

log = logging.getLogger(__name__)

# mallopt parameter numbers (glibc malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

MIB = 1024 * 1024
DEFAULT_CHUNK_BYTES = 2 * MIB  # the transport's chunk payload (transport.limits.Limits.chunk_bytes)
COLLABORATOR_MMAP_THRESHOLD = 32 * MIB  # glibc's largest allowed value on 64-bit systems
COLLABORATOR_TRIM_THRESHOLD = 1024 * MIB  # free heap kept for the next round instead of returned

_USER_SETTINGS = ("MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")


def tune_for_aggregator(chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> bool:
    """Bound the aggregator's resident memory by its live tensors; True when glibc took the settings.
    `chunk_bytes`: the payload of the chunks it sends and receives, which stay on the heap."""
    # one MiB of room for the message framing and gRPC's own copy of a chunk
    return _apply({M_ARENA_MAX: 1, M_MMAP_THRESHOLD: chunk_bytes + MIB})


def tune_for_collaborator() -> bool:
    """Reuse a collaborator's freed model buffers round after round; True when glibc took the settings."""
    return _apply(
        {M_MMAP_THRESHOLD: COLLABORATOR_MMAP_THRESHOLD, M_TRIM_THRESHOLD: COLLABORATOR_TRIM_THRESHOLD}
    )


def _apply(settings: dict[int, int]) -> bool:
    if not sys.platform.startswith("linux") or any(name in os.environ for name in _USER_SETTINGS):
        return False
    mallopt = _mallopt()
    if mallopt is None:
        return False
    applied = all(mallopt(parameter, value) == 1 for parameter, value in settings.items())
    if not applied:
        log.debug("glibc refused some malloc settings %s", settings)
    return applied


def _mallopt() -> Callable[[int, int], int] | None:
    try:
        function = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # no C library symbols to look up, or no mallopt (not glibc)
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_int)
    function.restype = ctypes.c_int
    return function
