"""The chunk files of ``eglpp select``: ``OUT/partial/<fingerprint>/chunk-NNNNN.npz``.

The fingerprint (:func:`fingerprint`) digests everything the scores depend on, so a rerun reuses
only chunks scored the same way.

A chunk file covers pool positions ``[lo, hi)`` and holds

- ``usable`` (n,) bool and ``reasons`` (n,) str: which images could be read, and why not
  (``""`` where they could);
- for the usable rows only, in order: ``scores``, ``embeddings``, ``joints``, ``maxvals``,
  optionally ``predicted_loss``, and the strategy's details as ``detail_<name>``.

A chunk with no usable row holds only the first two. Chunk files written before images were
checked (no ``usable``) are read as all usable.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from eglpp.io import atomic_write_bytes
from eglpp.practitioner.labelled import LabelledSet
from eglpp.practitioner.pool import Pool, unreadable

if TYPE_CHECKING:  # select imports this module
    from eglpp.practitioner.select import SelectConfig

__all__ = [
    "fingerprint",
    "file_digest",
    "save_chunk",
    "load_chunk",
    "reusable_chunk",
    "skipped_entries",
]


def file_digest(path: Path) -> str:
    """The SHA-256 of a file's bytes, hex (a checkpoint's identity)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fingerprint(
    checkpoint: Path, labelled: LabelledSet, pool: Pool, config: SelectConfig, source=None
) -> str:
    """A digest of everything the chunk scores depend on: the name of the chunks' folder.

    ``labelled`` is a :class:`~eglpp.practitioner.labelled.LabelledSet`, ``config`` a
    :class:`~eglpp.practitioner.select.SelectConfig`; ``source`` says which network scored
    (``{"model": spec, ...}`` for ``--model``, whose ``checkpoint`` is its weights' file).
    """
    h = hashlib.sha256()
    ann = labelled.annotations
    strategy, scoring = config.strategy, config.scoring
    settings = {
        k: getattr(config, k) for k in ("input_size", "chunk_size", "sigma", "seed", "box_scale")
    }
    settings |= {"strategy": strategy.name, "gradnorm": scoring.gradnorm}
    if scoring.gradnorm_method not in ("vmap", "auto"):  # (their fingerprints as before)
        settings["gradnorm_method"] = scoring.gradnorm_method
    if config.estimator != "exact":  # (exact runs keep the fingerprints they had before)
        settings |= {"estimator": config.estimator, "n_exact": scoring.n_exact,
                     "n_probes": scoring.n_probes}  # fmt: skip
    if source and "model" in source:  # --model: the factory too (checkpoints keep their digest)
        settings["source"] = source
    defaults = type(strategy)()  # the hyperparameters set to other than their defaults
    settings["hyperparameters"] = sorted(
        (f.name, repr(getattr(strategy, f.name)))
        for f in dataclass_fields(strategy)
        if f.name != "estimator" and getattr(strategy, f.name) != getattr(defaults, f.name)
    )
    h.update(file_digest(checkpoint).encode())
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    for array in (ann.joints, ann.visible, pool.boxes):
        h.update(np.ascontiguousarray(array).tobytes())
    h.update("\n".join(map(str, ann.image_paths or [])).encode())
    h.update("\n".join(pool.keys()).encode())
    return h.hexdigest()[:16]


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
