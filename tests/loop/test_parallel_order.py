"""``jobs`` > 2: a (run, strategy) task never starts before its own run's base model is saved.

With two workers the order happens to hold whatever the task graph says; with more, a strategy
of run 1 that waited for run 0's base model only would start while run 1's is still training,
and fail on a missing checkpoint (or, after a resume, read a stale one). Here run 1's base
model is slow on purpose: it waits until run 0's strategies have finished, so that a worker is
free to start a run-1 strategy too early. Every task the loop hands the scheduler is wrapped
(module-level functions: spawned workers import this module by name) to check, as it starts,
that its run's base model is on disk.
"""

from __future__ import annotations

import time
from pathlib import Path

import eglpp.experiment.loop as loop
from eglpp.experiment.config import config_from_dict, preset
from eglpp.experiment.parallel import Task
from eglpp.experiment.rundir import RunPaths

STRATEGIES = ("random", "coreset")
WAIT_S = 300  # at most, for run 0's strategies (seconds each on a busy machine)


def _base_saved(paths: RunPaths, r: int) -> bool:
    base = paths.base(r)
    return RunPaths.model(base).exists() and RunPaths.metrics(base).exists()


def _checked(out: str, cycles: int, fn, args: tuple) -> None:
    """Run a task of the loop: run 1's base model only after run 0's strategies are done; a
    strategy only where its run's base model is saved."""
    paths = RunPaths(Path(out))
    if fn is loop._base_task and args == (1,):
        last = [RunPaths.metrics(paths.cycle(0, s, cycles)) for s in STRATEGIES]
        deadline = time.monotonic() + WAIT_S
        while not all(p.exists() for p in last):
            if time.monotonic() > deadline:
                raise TimeoutError("run 1 base: run 0's strategies never finished")
            time.sleep(0.05)
    elif fn is loop._strategy_task:
        r, name = args
        if not _base_saved(paths, r):
            raise AssertionError(f"run {r} {name} started before run {r}'s base model was saved")
    fn(*args)


def test_a_strategy_waits_for_its_own_runs_base_model(monkeypatch, tmp_path, micro_config):
    """4 workers: when run 0's base model is saved, run 0's two strategies start, and a fourth
    worker is free for a run-1 strategy that waited for the wrong base model."""
    jobs = 4
    micro = micro_config(runs=2, cycles=1, strategies=list(STRATEGIES))
    cfg = config_from_dict(micro, base=preset("tiny"))
    real = loop.run_tasks
    handed: list[Task] = []

    def checked(tasks, n, **kwargs):
        handed.extend(tasks)
        wrapped = [Task(t.key, _checked, (str(tmp_path), cfg.cycles, t.fn, t.args), t.after)
                   for t in tasks]  # fmt: skip
        return real(wrapped, n, **kwargs)

    monkeypatch.setattr(loop, "run_tasks", checked)
    lines: list[str] = []
    results = loop.run_experiment(cfg, tmp_path, log=lines.append, jobs=jobs)
    assert f"{jobs} worker processes, 1 thread(s) each" in lines
    assert sum(t.fn is loop._strategy_task for t in handed) == cfg.runs * len(STRATEGIES)
    assert all(len(results["scores"][s]) == cfg.runs for s in STRATEGIES)
