"""``eglpp run`` on several processes, GPUs or nodes (ranks of ``torchrun``): every rank trains.

The experiment is embarrassingly parallel once placed: the base model of each run, then each
(run, strategy) chain of cycles, are **tasks** (:func:`experiment_tasks`, in that order), and
task ``i`` runs on rank ``i % world_size`` (:func:`placed`). Every random choice of a task is
seeded by the task, never by the rank, so ``results.json`` is byte for byte that of one process
for any number of ranks or nodes (tested).

- **Each rank** uses its own GPU (``cuda`` means GPU ``LOCAL_RANK``) or its share of the CPU
  cores, builds the data, scores its own pool, and writes only the folders of its tasks. A chain
  waits for its run's base model to appear in the run folder; then every rank waits until
  every task is done.
- **Rank 0** prints one line per finished task (task, seconds computed, tasks done / total,
  time left) as it sees the done markers appear, then writes results.json and the table.
- **Requirement**: every rank sees the same run folder: one machine, or on several nodes a
  shared file system (NFS, Lustre, …) holding ``--out``. No collective communication is used:
  no process group, no NCCL/gloo timeouts during hours of training.
- **Faults.** A task that raises ends its rank with :class:`TaskFailed` naming the task;
  torchrun's agent then stops every rank. With ``torchrun --max-restarts N`` the group
  restarts after a rank dies (``kill -9``, out of memory) and resumes: finished steps are read
  back, not redone (every step is written atomically). A rank whose agent is killed ends itself.

Usage (one node with 8 GPUs; several nodes: the README's Slurm recipe)::

    torchrun --standalone --nproc-per-node 8 -m eglpp run --device cuda --preset paper
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from eglpp.distributed import exit_with_parent, launch_env
from eglpp.experiment.config import ExperimentConfig
from eglpp.experiment.loop import (
    Experiment,
    Explain,
    base_task,
    chain_task,
    clock,
    open_experiment,
    progress_line,
    run_experiment,
    write_results,
)
from eglpp.experiment.rundir import RunPaths
from eglpp.io import read_json

__all__ = ["Task", "TaskFailed", "experiment_tasks", "placed", "run_ranks"]

Log = Callable[[str], None]


@dataclass(frozen=True)
class Task:
    """Run ``r``'s base model (``strategy`` None) or its chain of ``strategy``'s cycles."""

    r: int
    strategy: str | None = None

    @property
    def key(self) -> str:
        return f"run {self.r} {self.strategy or 'base'}"


class TaskFailed(RuntimeError):
    """A task raised on a rank: names the task, the rank and the original error."""


def experiment_tasks(cfg: ExperimentConfig) -> list[Task]:
    """Every base model, then every (run, strategy) chain, run-major."""
    bases = [Task(r) for r in range(cfg.runs)]
    return bases + [Task(r, s) for r in range(cfg.runs) for s in cfg.strategies]


def placed(tasks: list[Task], rank: int, world: int) -> list[Task]:
    """The tasks of ``rank`` among ``world``: every ``world``-th from ``rank``, in order (its
    base models come before its chains, so no rank waits for itself)."""
    return tasks[rank::world]


def _step_dirs(paths: RunPaths, cfg: ExperimentConfig, task: Task) -> list[Path]:
    if task.strategy is None:
        return [paths.base(task.r)]
    return [paths.cycle(task.r, task.strategy, c) for c in range(1, cfg.cycles + 1)]


def _done(paths: RunPaths, cfg: ExperimentConfig, task: Task) -> bool:
    """A task is done when its last step's metrics.json exists (its done marker)."""
    return RunPaths.metrics(_step_dirs(paths, cfg, task)[-1]).exists()


def _seconds(paths: RunPaths, cfg: ExperimentConfig, task: Task) -> float:
    """The seconds a task's steps computed (their phases: train, score, evaluate, …)."""
    total = 0.0
    for step in _step_dirs(paths, cfg, task):
        total += sum((read_json(RunPaths.metrics(step)).get("seconds") or {}).values())
    return total


class _Progress:
    """Rank 0's log: one line per task seen finished, paced by the tasks computed meanwhile."""

    def __init__(self, exp: Experiment, tasks: list[Task], log: Log) -> None:
        self.exp, self.log, self.start = exp, log, time.time()
        self.pending = [t for t in tasks if not _done(exp.paths, exp.cfg, t)]
        self.total, self.computed = len(tasks), 0
        self.lock = threading.Lock()

    def poll(self) -> bool:
        """Log the tasks finished since the last poll; True when every task is done."""
        with self.lock:
            finished = [t for t in self.pending if _done(self.exp.paths, self.exp.cfg, t)]
            for task in finished:
                self.pending.remove(task)
                self.computed += 1
                done = self.total - len(self.pending)
                line = progress_line(done, self.computed, self.total, self.start, "tasks")
                seconds = _seconds(self.exp.paths, self.exp.cfg, task)
                self.log(f"{task.key}: done in {clock(seconds)} {line}")
            return not self.pending


def _terminated(signum, frame) -> None:
    sys.exit(128 + signum)  # unwinds: an atomic write removes its temporary file


def _wait(condition: Callable[[], bool], poll: float) -> None:
    while not condition():
        time.sleep(poll)


def _run_task(exp: Experiment, task: Task, rank: int, explain: Explain | None, poll: float):
    try:
        if task.strategy is None:
            base_task(exp, task.r, explain=explain)
        else:
            _wait(lambda: _done(exp.paths, exp.cfg, Task(task.r)), poll)
            chain_task(exp, task.r, task.strategy, explain=explain)
    except Exception as exc:
        raise TaskFailed(
            f"task {task.key} failed on rank {rank}: {type(exc).__name__}: {exc} (finished "
            "steps are kept: rerun the same command to resume)"
        ) from exc


def run_ranks(
    cfg: ExperimentConfig,
    out: str | Path,
    log: Log = print,
    explain: Explain | None = None,
    poll: float = 1.0,
) -> dict | None:
    """The experiment in ``out`` on this rank of torchrun's group (every rank calls it).

    Outside torchrun (``WORLD_SIZE`` unset or 1): :func:`~eglpp.experiment.loop.run_experiment`.
    Returns the results on rank 0, None on the others. ``poll``: seconds between looks at the
    run folder for the done markers of other ranks' tasks.
    """
    rank, world, local_rank = launch_env()
    if world == 1:
        return run_experiment(cfg, out, log=log, explain=explain)
    cfg = cfg.resolved()
    device = torch.device(cfg.device)
    if device.type == "cuda" and device.index is None:
        torch.cuda.set_device(local_rank)  # "cuda" is then this rank's own GPU
    exit_with_parent()
    for signum in (signal.SIGTERM, signal.SIGINT):  # the agent's stop: end quietly, cleanly
        signal.signal(signum, _terminated)
    exp = open_experiment(cfg, out, log if rank == 0 else _quiet)
    tasks = experiment_tasks(exp.cfg)
    mine = placed(tasks, rank, world)
    if rank != 0:
        for task in mine:
            _run_task(exp, task, rank, explain, poll)
        _wait(lambda: all(_done(exp.paths, exp.cfg, t) for t in tasks), poll)
        return None
    log(f"{world} ranks, {len(tasks)} tasks ({exp.cfg.runs} base models, then each (run, "
        f"strategy)'s cycles): task i on rank i mod {world}")  # fmt: skip
    progress = _Progress(exp, tasks, log)
    stop = threading.Event()
    watcher = threading.Thread(target=_watch, args=(progress, stop, poll), daemon=True)
    watcher.start()
    try:
        for task in mine:
            _run_task(exp, task, rank, explain, poll)
        _wait(progress.poll, poll)
    finally:
        stop.set()
        watcher.join()
    return write_results(exp)


def _watch(progress: _Progress, stop: threading.Event, poll: float) -> None:
    while not stop.wait(poll) and not progress.poll():
        pass


def _quiet(_message: str) -> None:
    pass
