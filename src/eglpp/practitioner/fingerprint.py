"""The fingerprint of an ``eglpp select``: the name of its chunks' folder, and what tells one
selection from another in an output folder
(:func:`~eglpp.practitioner.settings.check_same_selection`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields as dataclass_fields
from pathlib import Path

import numpy as np

from eglpp.practitioner.chunks import file_digest
from eglpp.practitioner.labelled import LabelledSet
from eglpp.practitioner.pool import Pool
from eglpp.practitioner.select import SelectConfig

__all__ = ["fingerprint"]


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
    if config.normalize.name != "unit":  # (unit runs keep the fingerprints they had before)
        settings["normalize"] = config.normalize.record()
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
