"""``eglpp run`` under ``torchrun``: one process runs the loop, every process scores a shard.

Design (the simplest one that keeps a run resumable and its selections those of one process):

- **Rank 0, the leader, runs the experiment exactly as one process does.** It alone trains,
  evaluates, reads and writes the run directory, and prints.
- **The other ranks are scoring workers** (:func:`eglpp.experiment.pool.serve`): they join
  each of the leader's gradient-norm calls and score their shard of the pool. At the end the
  leader broadcasts ``None`` and the workers return.

Workers keep no state between requests, so a resumed run needs nothing from them, and the
scores do not depend on the number of processes. Training is not sharded (so that the
selections do not depend on the process count either), and it is then what bounds a sharded
run: with the ``paper`` preset a cycle fine-tunes each of 5 strategies for 30 epochs on ~2,000
to 6,000 images (~60k–180k forward-backward passes each), while exact EGL++ scores ~5,000 to
9,000 pool images with 1 forward + 30 vector-Jacobian products each (~150k–280k), once per
cycle, split over the processes. Data-parallel training is the next lever (not implemented).

Usage::

    torchrun --nproc_per_node 4 $(which eglpp) run --preset paper --out runs/paper
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch.distributed as dist

from eglpp.distributed import process_group, rank_and_size
from eglpp.experiment.config import ExperimentConfig
from eglpp.experiment.data import build_data
from eglpp.experiment.loop import Explain, default_jobs, run_experiment
from eglpp.experiment.pool import WAIT, serve

__all__ = ["run_sharded"]


def run_sharded(
    cfg: ExperimentConfig,
    out: str | Path,
    log: Callable[[str], None] = print,
    explain: Explain | None = None,
    jobs: int | None = 1,
) -> dict | None:
    """:func:`~eglpp.experiment.loop.run_experiment`, sharding the scoring under torchrun.

    ``jobs``: worker processes of one process's run (None: :func:`default_jobs`); under
    torchrun only 1. Returns the results on the leader (and in a single process), None on the
    workers.
    """
    cfg = cfg.resolved()  # the dataset's defaults, the same on every rank
    with process_group(cfg.device, timeout=WAIT) as active:
        rank, _ = rank_and_size()
        if active and jobs not in (None, 1):
            raise ValueError(f"jobs={jobs}: under torchrun every rank is one process (jobs=1)")
        if active and rank != 0:
            serve(cfg, build_data(cfg, device=cfg.device))
            return None
        if jobs is None:
            jobs = 1 if active else default_jobs(cfg)
        try:
            return run_experiment(cfg, out, log=log, explain=explain, jobs=jobs)
        finally:
            if active:
                dist.broadcast_object_list([None], src=0)
