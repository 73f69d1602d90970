"""The chunk files of ``eglpp select``: ``OUT/partial/<fingerprint>/chunk-NNNNN.npz``.

The fingerprint (:func:`eglpp.practitioner.fingerprint.fingerprint`) digests everything the
scores depend on, so a rerun reuses only chunks scored the same way.

A chunk file covers pool positions ``[lo, hi)`` and holds

- ``usable`` (n,) bool and ``reasons`` (n,) str: which images could be read, and why not
  (``""`` where they could);
- for the usable rows only, in order: ``scores``, ``embeddings``, ``joints``, ``maxvals``,
  optionally ``predicted_loss``, and the strategy's details as ``detail_<name>``.

A chunk with no usable row holds only the first two. Chunk files written before images were
checked (no ``usable``) are read as all usable.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from eglpp.io import atomic_write_bytes, file_digest
from eglpp.pose.datasets.base import load_image

if TYPE_CHECKING:  # the pool module decodes images with torch: the chunk files need none
    from eglpp.practitioner.pool import Pool

__all__ = [
    "unreadable",
    "file_digest",
    "save_chunk",
    "load_chunk",
    "reusable_chunk",
    "skipped_entries",
]


def save_chunk(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` as one ``.npz``, atomically."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def load_chunk(path: Path) -> dict[str, np.ndarray] | None:
    """The arrays of a chunk file; None when it cannot be read (e.g. cut off mid-write)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError):
        return None


def reusable_chunk(part: dict | None, pool: Pool, lo: int, hi: int) -> dict | None:
    """``part``, the saved chunk of ``pool[lo:hi]``, if it is complete and none of its skipped
    images has become readable since (then the chunk is scored again); else None."""
    if part is None:
        return None
    n = hi - lo
    if "usable" not in part:
        part = {**part, "usable": np.ones(n, bool), "reasons": np.full(n, "")}
    usable = np.asarray(part["usable"], bool)
    if usable.shape != (n,) or len(part["reasons"]) != n:
        return None
    if len(part.get("scores", ())) != int(usable.sum()):
        return None
    bad = np.flatnonzero(~usable)
    if len(bad) and not all(unreadable(pool.subset(lo + bad))):
        return None
    return part


def skipped_entries(pool: Pool, usable: np.ndarray, reasons: np.ndarray) -> list[dict]:
    """One ``{"image", "path", "where", "reason"}`` per pool item that is not ``usable``."""
    return [
        {
            "image": pool.names[i],
            "path": str(pool.paths[i].resolve()),
            "where": pool.where[i],
            "reason": str(reasons[i]),
        }
        for i in np.flatnonzero(~np.asarray(usable, bool))
    ]


def unreadable(pool: Pool) -> list[str]:
    """Why each item's image cannot be used, ``""`` where it decodes (one entry per item).

    The check is the decoding the pose dataset does (:func:`~eglpp.pose.datasets.base.load_image`),
    once per distinct file.
    """
    reasons: dict[Path, str] = {}
    for path in pool.paths:
        if path in reasons:
            continue
        try:
            load_image(path)
            reasons[path] = ""
        except FileNotFoundError:
            reasons[path] = "file not found"
        except OSError as exc:
            cause = exc.__cause__ or exc
            reasons[path] = f"cannot decode ({type(cause).__name__}: {cause})"
    return [reasons[path] for path in pool.paths]
