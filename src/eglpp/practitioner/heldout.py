"""The held-out test images of a labelled set: chosen once, recorded, the same in every round.

``eglpp train labelled.json`` tests on a tenth of the labelled images. Were that tenth drawn
afresh from each round's larger labelled set, each round's PCK would be measured on other
images, some of them the previous round's training images, and the before/after difference
would mix the model's progress with the change of test set. So the first train of a labelled
set chooses the images (:func:`choose`: the :data:`FRACTION` whose file names hash lowest, which
depends on no order or seed), records them in ``<labelled>.heldout.json`` beside the set
(:func:`record_path`), and every later train reads that record: the images it names must still
be in the set, and each image a later round adds goes to training. ``eglpp import`` carries
the record to the set it writes (:func:`carry_record`), so round 2's ``labelled2.json`` tests
on round 1's images.

The record lists the images relative to its own folder (the project can move) in JSON::

    {"held_out": ["images/a.jpg", ...], "fraction": 0.1, "chosen_from": "labelled.json"}
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from eglpp.io import atomic_write_json, read_json

__all__ = ["FRACTION", "record_path", "choose", "held_out_mask", "carry_record", "read_record"]

#: Share of the labelled images held out on the first train.
FRACTION = 0.1


def record_path(labelled: Path) -> Path:
    """``labelled.json`` -> ``labelled.heldout.json`` beside it."""
    labelled = Path(labelled)
    return labelled.with_name(f"{labelled.stem}.heldout.json")


def _key(image: Path) -> str:
    return hashlib.sha256(image.name.encode()).hexdigest() + str(image)


def choose(images: Sequence[Path], fraction: float = FRACTION) -> list[Path]:
    """The ``max(1, round(fraction × n))`` of the n distinct ``images`` whose file names hash
    lowest (full paths break ties), in that order: the same images for any order of the set."""
    distinct = sorted(set(map(Path, images)), key=_key)
    return distinct[: max(1, round(fraction * len(distinct)))]


def read_record(path: Path) -> list[Path]:
    """The held-out images a record names, as paths resolved against its folder."""
    doc = read_json(path)
    names = doc.get("held_out") if isinstance(doc, dict) else None
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ValueError(f'{path}: expected {{"held_out": [image paths, ...]}}, a non-empty list')
    return [(path.parent / name).resolve() for name in names]


def _write(path: Path, images: Sequence[Path], source: Path) -> None:
    names = [Path(os.path.relpath(Path(p).resolve(), path.parent.resolve())).as_posix()
             for p in images]  # fmt: skip
    atomic_write_json(path, {"held_out": names, "fraction": FRACTION, "chosen_from": source.name})


def held_out_mask(
    labelled: Path, image_paths: Sequence[Path], record: Path | None = None
) -> tuple[np.ndarray, Path, bool]:
    """(test (N,) bool per person of the set, the record, whether it was written now).

    ``image_paths`` are the people's images (several people may share one). ``record``
    defaults to :func:`record_path`; where it exists its images are the test images, all of
    which must be in the set, else :func:`choose` picks them and the record is written.
    """
    record = Path(record) if record is not None else record_path(labelled)
    resolved = [Path(p).resolve() for p in image_paths]
    distinct = set(resolved)
    if len(distinct) < 2:
        raise ValueError(f"{labelled}: {len(distinct)} image(s); need at least 2 to hold one out")
    created = not record.is_file()
    if created:
        chosen = choose(resolved)
        _write(record, chosen, Path(labelled))
    else:
        chosen = read_record(record)
        missing = [p for p in chosen if p not in distinct]
        if missing:
            raise ValueError(
                f"{record}: {len(missing)} of its {len(chosen)} held-out images are not in "
                f"{labelled} (first: {missing[0]}); the held-out set stays the same across rounds: "
                "train on a set that holds them, or give --held-out another record"
            )
        if set(chosen) >= distinct:
            raise ValueError(f"{record}: holds every image of {labelled}; nothing left to train on")
    test = set(chosen)
    return np.array([p in test for p in resolved], dtype=bool), record, created


def carry_record(labelled: Path, merged: Path) -> Path | None:
    """Copy the held-out record of ``labelled`` to the set ``merged`` from it (``eglpp
    import``); the record written, or None where ``labelled`` has none or ``merged`` has one."""
    source, target = record_path(labelled), record_path(merged)
    if not source.is_file() or target.exists():
        return None
    _write(target, read_record(source), Path(labelled))
    return target
