"""The pool inputs of one experiment cycle, with the gradient norms sharded under ``torchrun``.

Design (the simplest one that keeps a run resumable and its selections those of one process):

- **Rank 0, the leader, runs the experiment exactly as one process does.** It alone trains,
  evaluates, reads and writes the run directory, and prints.
- **The other ranks are scoring workers** (:func:`serve`). Whenever the leader calls a
  gradient-norm function of :class:`~eglpp.strategies.base.PoolInputs` (``pair_gradnorms`` or
  ``expected_gradnorms``, EGL++'s cost), it first broadcasts a :class:`ScoringRequest`: the
  model's weights, the labelled-cycle array and the call's arguments. Each worker rebuilds the
  same pool and labelled sets (the data are a deterministic function of the config), makes the
  same call, and every rank scores its contiguous shard of the pool
  (:mod:`eglpp.gradnorm.sharded`); the shards are gathered in rank order.

Workers keep no state between requests, so a resumed run needs nothing from them, and the
scores do not depend on the number of processes. :mod:`eglpp.experiment.sharded` starts the
process group and the roles.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from eglpp.distributed import gather_rows, rank_and_size
from eglpp.experiment.config import ExperimentConfig
from eglpp.experiment.data import PoseData, experiment_sets
from eglpp.pose.hourglass import StackedHourglass
from eglpp.scoring.pool_inputs import pool_inputs
from eglpp.seeds import stable_seed
from eglpp.strategies.base import PoolInputs

__all__ = ["ScoringRequest", "cycle_pool_inputs", "scoring_settings", "serve", "WAIT"]

#: The PoolInputs fields whose computation is sharded across processes.
SHARDED_FIELDS = ("pair_gradnorms", "expected_gradnorms")
#: How long a worker may wait for the leader's next request (the leader trains meanwhile).
WAIT = timedelta(days=1)


@dataclasses.dataclass(frozen=True)
class ScoringRequest:
    """What a worker needs to join the leader's call of one gradient-norm function."""

    field: str  # one of SHARDED_FIELDS
    state: dict[str, torch.Tensor]  # the model's state_dict, on the CPU
    labelled_map: np.ndarray  # (N_pool,) cycle each pool item was labelled in, -1 never
    args: tuple  # the call's arguments, e.g. (neighbours (U, K), label_source)


def scoring_settings(cfg: ExperimentConfig, labelled_map: np.ndarray) -> dict:
    """Keyword arguments of :func:`~eglpp.scoring.pool_inputs.pool_inputs` for one experiment cycle.

    The probe seed depends on the experiment seed and the labelled set only, so a resumed run,
    and every rank, draws the same probes.
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
    """The experiment loop's :func:`~eglpp.scoring.pool_inputs.pool_inputs` for one cycle.

    On the leader of a distributed run, each gradient-norm function first calls the workers
    in (:func:`serve`); elsewhere the functions are those of ``pool_inputs``. With
    ``progress``, the leader (or the only process) shows a bar of its gradient-norm rows.
    """
    pool_set, labelled = experiment_sets(data, labelled_map)
    rank, world = rank_and_size()
    inputs = pool_inputs(
        needs, model, aux, pool_set, labelled, **scoring_settings(cfg, labelled_map),
        progress=progress and rank == 0,
    )  # fmt: skip
    if world == 1 or rank != 0:
        return inputs
    wrapped = {
        name: _calling_workers(getattr(inputs, name), name, model, labelled_map)
        for name in SHARDED_FIELDS
        if getattr(inputs, name) is not None
    }
    return dataclasses.replace(inputs, **wrapped)


def _calling_workers(fn: Callable, name: str, model, labelled_map: np.ndarray) -> Callable:
    def call(*args):
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        request = ScoringRequest(name, state, np.asarray(labelled_map).copy(), args)
        dist.broadcast_object_list([request], src=0)
        return fn(*args)

    return call


def serve(cfg: ExperimentConfig, data: PoseData) -> int:
    """A worker's loop: join each of the leader's scoring calls until it says stop.

    Returns the number of requests served. A request this worker cannot even set up is reported
    to every rank through the gather (the leader raises; the worker waits for the next request).
    """
    model = StackedHourglass(cfg.model)
    served = 0
    while True:
        box: list = [None]
        dist.broadcast_object_list(box, src=0)
        request = box[0]
        if request is None:
            return served
        served += 1
        try:
            model.load_state_dict(request.state)
            model.to(cfg.device)
            inputs = cycle_pool_inputs(
                frozenset({request.field}), model, None, data, request.labelled_map, cfg,
                progress=False,
            )  # fmt: skip
            fn = getattr(inputs, request.field)
        except Exception as exc:  # the leader is waiting in the gather: tell it
            try:
                gather_rows(RuntimeError(f"{type(exc).__name__}: {exc}"), len(request.args[0]))
            except RuntimeError:
                pass
            continue
        try:
            fn(*request.args)  # this rank's shard, gathered to every rank
        except Exception:  # raised on every rank alike: the leader reports it and stops us
            continue
