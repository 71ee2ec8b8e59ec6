"""A digest of a PyTorch storage's content, for the content keys of a checkpoint.

PyTorch's own pickle of a storage embeds its memory address, so two copies of one model pickle to
different bytes. A checkpoint keys each attribute by a digest of its pickle in which each storage
stands as this digest (its dtype, device, size and bytes) instead: equal models get equal keys, and
the bytes are hashed where they lie, without the copies a pickle makes. PyTorch is not imported here:
a storage can only exist once it is.
"""

from __future__ import annotations

import hashlib
import sys
from typing import Any


def storage_digest(obj: Any, seen: dict[tuple[int, int], str] | None = None) -> str | None:
    """The digest of a PyTorch TypedStorage; None for anything else. `seen` keeps the digests of
    storages by address while they are alive (a model and its optimizer share their parameters)."""
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(obj, torch.storage.TypedStorage):
        return None
    untyped = obj._untyped_storage
    if untyped.device.type == "meta":
        return None  # no bytes to read: PyTorch's own pickle says what it makes of it
    where = (untyped.data_ptr(), untyped.nbytes())
    if seen is not None and where in seen:
        return f"torch-storage:{obj.dtype}:{untyped.device}:{seen[where]}"
    raw = untyped if untyped.device.type == "cpu" else untyped.cpu()
    view = torch.empty(0, dtype=torch.uint8).set_(raw)  # the storage's bytes, not a copy
    digest = f"{untyped.nbytes()}:{hashlib.sha1(view.numpy().data, usedforsecurity=False).hexdigest()}"
    if seen is not None:
        seen[where] = digest
    return f"torch-storage:{obj.dtype}:{untyped.device}:{digest}"
