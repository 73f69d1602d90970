"""The pool inputs of one experiment cycle: :func:`~eglpp.scoring.pool_inputs.pool_inputs` with
the experiment's settings (:func:`scoring_settings`).

Each process scores its own pool: under torchrun every rank runs whole tasks
(:mod:`eglpp.experiment.ranks`), which keeps the ranks busier than sharding one task's pool
across them would (the measurement is in ``experiment/ranks.py``'s closing note, issue 24).
The library's sharded gradient norms (:mod:`eglpp.gradnorm.sharded`) remain for one large pool.
"""

from __future__ import annotations

import zlib

import numpy as np
from torch import nn

from eglpp.experiment.config import ExperimentConfig
from eglpp.experiment.data import PoseData, experiment_sets
from eglpp.pose.hourglass import StackedHourglass
from eglpp.scoring.pool_inputs import pool_inputs
from eglpp.seeds import stable_seed
from eglpp.strategies.base import PoolInputs

__all__ = ["cycle_pool_inputs", "scoring_settings"]


def scoring_settings(cfg: ExperimentConfig, labelled_map: np.ndarray) -> dict:
    """Keyword arguments of :func:`~eglpp.scoring.pool_inputs.pool_inputs` for one experiment cycle.

    The probe seed depends on the experiment seed and the labelled set only, so a resumed run,
    on any rank, draws the same probes.
    """
    labelled = np.flatnonzero(np.asarray(labelled_map) >= 0).astype(np.int64)
    return {
        "batch_size": cfg.batch_size,
        "device": cfg.device,
        "sigma": cfg.cycle_train.sigma,
        "scoring": cfg.scoring,
        "probe_seed": stable_seed(cfg.seed, "probes", zlib.crc32(labelled.tobytes())),
    }


def cycle_pool_inputs(
    needs: frozenset[str],
    model: StackedHourglass,
    aux: nn.Module | None,
    data: PoseData,
    labelled_map: np.ndarray,
    cfg: ExperimentConfig,
    progress: bool = True,
) -> PoolInputs:
    """The experiment loop's :func:`~eglpp.scoring.pool_inputs.pool_inputs` for one cycle;
    ``progress`` shows a bar of the gradient-norm rows."""
    pool_set, labelled = experiment_sets(data, labelled_map)
    return pool_inputs(
        needs, model, aux, pool_set, labelled, **scoring_settings(cfg, labelled_map),
        progress=progress,
    )  # fmt: skip
