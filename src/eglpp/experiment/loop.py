"""The active-learning loop for pose: runs × strategies × cycles, in one process, resumable.

A **run** is one seed: an initial labelled set and a base model trained on it, shared by every
strategy. Each strategy then runs ``cycles`` cycles of score → select ``budget`` → label →
retrain → evaluate. The loop computes the pool outputs a strategy ``needs`` and never branches
on which strategy it runs. The run directory's files are named by
:class:`~eglpp.experiment.rundir.RunPaths`; a step is done when its ``metrics.json`` exists.

Every random choice draws from a generator seeded by (seed, run, strategy, cycle, step), so a
resumed run makes exactly the choices of an uninterrupted one. With ``common_random_numbers``
(the default) the retraining of a cycle draws from (seed, run, cycle) only, and shuffles the
labelled images by their pool index (``fit(keys=...)``): every strategy of a (run, cycle) trains
with the same randomness, and the paired differences measure the selections.

Index spaces: ``labelled_map`` is over the pool (pool indices); a strategy scores the
unlabelled images in ``unlabelled = flatnonzero(labelled_map < 0)`` order and returns
*positions* among them; ``unlabelled[positions]`` are the pool indices saved as
``query_indices``.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from eglpp.cores import usable_cores
from eglpp.devices import check_device
from eglpp.experiment.auxiliary import fit_auxiliary
from eglpp.experiment.coco_data import check_split
from eglpp.experiment.config import ExperimentConfig, config_to_dict
from eglpp.experiment.data import PoseData, build_data, labelled_keys, labelled_set
from eglpp.experiment.pool import cycle_pool_inputs
from eglpp.experiment.rundir import (
    RunPaths,
    check_config,
    check_numerics,
    load_selection,
    numerics,
    save_selection,
)
from eglpp.experiment.timing import PhaseTimer
from eglpp.io import atomic_save_npy, atomic_write_json, load_npy, read_json
from eglpp.pose.checkpoint import load_checkpoint, save_checkpoint
from eglpp.pose.hourglass import StackedHourglass
from eglpp.pose.inference import evaluate
from eglpp.pose.train import fit
from eglpp.scoring.approx_check import approx_agreement, check_needs
from eglpp.seeds import stable_seed
from eglpp.strategies import PoolInputs, Strategy

__all__ = [
    "Experiment",
    "Explain",
    "open_experiment",
    "base_task",
    "chain_task",
    "write_results",
    "run_experiment",
    "collect_results",
    "default_jobs",
]

Log = Callable[[str], None]
#: ``explain(cycle_dir, strategy_name, inputs, scores, positions, details, data, labelled_map,
#: cfg)``: draws the figures of one selection (``eglpp.report.explain.explain_selection``).
Explain = Callable[..., None]


class _Clock:
    """Steps (base models and cycles) done of the experiment's total, with a time estimate."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.counts = [0, 0]  # done, computed (not read back)
        self.start = time.time()

    def step(self, computed: bool) -> str:
        """Count one step; ``computed`` steps (not read back) set the pace of the estimate."""
        self.counts[0] += 1
        self.counts[1] += computed
        return progress_line(self.counts[0], self.counts[1], self.total, self.start, "steps")


def progress_line(done: int, timed: int, total: int, start: float, unit: str) -> str:
    """``[3/8 tasks, 1:02 elapsed, ~1:40 left]``: the estimate paced by the ``timed`` items
    computed (not read back) since ``start``."""
    elapsed = time.time() - start
    left = elapsed / max(timed, 1) * (total - done)
    return f"[{done}/{total} {unit}, {clock(elapsed)} elapsed, ~{clock(left)} left]"


def clock(seconds: float) -> str:
    """``1:05`` (minutes:seconds), ``1:02:03`` from an hour on."""
    minutes, sec = divmod(int(round(seconds)), 60)
    return (
        f"{minutes // 60}:{minutes % 60:02d}:{sec:02d}" if minutes >= 60 else f"{minutes}:{sec:02d}"
    )


@dataclass(frozen=True)
class _Run:
    """What every step of run ``r`` reads."""

    cfg: ExperimentConfig
    data: PoseData
    paths: RunPaths
    r: int
    log: Log
    explain: Explain | None
    clock: _Clock
    progress: bool = True  # progress bars (not on the ranks of a torchrun group)


def _new_model(cfg: ExperimentConfig, seed: int) -> StackedHourglass:
    return StackedHourglass(cfg.model).reset_parameters(torch.Generator().manual_seed(seed))


def _evaluate(model: StackedHourglass, run: _Run) -> dict:
    cfg = run.cfg
    return evaluate(
        model,
        run.data.test,
        metric=cfg.metric,
        alpha=cfg.alpha,
        batch_size=cfg.batch_size,
        device=cfg.device,
    )


def _metric(metrics: dict) -> str:
    """``PCK@0.2 = 34.12 %``: in percent, as Table 1 shows it."""
    return f"{metrics['metric']} = {100 * metrics['mean']:.2f} %"


def _initial(run: _Run) -> np.ndarray:
    """Pool indices labelled before cycle 1 (drawn once per run, then read back)."""
    path = run.paths.initial(run.r)
    if path.exists():
        return load_npy(path)
    rng = np.random.default_rng([run.cfg.seed, run.r])
    initial = np.sort(rng.choice(len(run.data.pool), size=run.cfg.initial, replace=False))
    atomic_save_npy(path, initial)
    return initial


def _base_model(run: _Run, initial: np.ndarray) -> StackedHourglass:
    """The run's base model: trained on the initial labelled set, or read back when done."""
    cfg, r, base = run.cfg, run.r, run.paths.base(run.r)
    done = RunPaths.metrics(base)
    if done.exists():
        run.clock.step(computed=False)
        return _load_base(run)
    model = _new_model(cfg, stable_seed(cfg.seed, r, "init"))
    labelled_map = np.full(len(run.data.pool), -1)
    labelled_map[initial] = 0
    train_set, _ = labelled_set(run.data, labelled_map)
    run.log(f"run {r}: training the base model on {len(train_set)} images")
    timer = PhaseTimer(cfg.device)
    with timer("train"):
        fit(model, train_set, cfg.base_train, seed=stable_seed(cfg.seed, r, "base"),
            device=cfg.device, progress=run.progress)  # fmt: skip
    save_checkpoint(RunPaths.model(base), model)
    with timer("evaluate"):
        metrics = _evaluate(model, run)
    atomic_write_json(done, {**metrics, "seconds": timer.seconds})
    run.log(f"run {r}: base model {_metric(metrics)} {run.clock.step(computed=True)}")
    return model


def _load_base(run: _Run) -> StackedHourglass:
    """Run ``run.r``'s saved base model."""
    model = _new_model(run.cfg, stable_seed(run.cfg.seed, run.r, "init"))
    load_checkpoint(RunPaths.model(run.paths.base(run.r)), model)
    return model


@dataclass
class _Cycles:
    """One strategy's state across its cycles of one run."""

    name: str
    strategy: Strategy
    model: StackedHourglass
    aux: torch.nn.Module | None
    labelled_map: np.ndarray  # (N_pool,) cycle each pool item was labelled in, -1 never
    aux_ready: bool = False


def _strategy_cycles(run: _Run, name: str, base_model, initial: np.ndarray) -> list[float]:
    """Run (or resume) one strategy's cycles; returns its metric after each cycle."""
    strategy = run.cfg.strategy.get(name)
    labelled_map = np.full(len(run.data.pool), -1, dtype=np.int64)
    labelled_map[initial] = 0
    model = copy.deepcopy(base_model)
    state = _Cycles(name, strategy, model, strategy.auxiliary(model.feature_channels()),
                    labelled_map)  # fmt: skip
    previous = RunPaths.model(run.paths.base(run.r))
    values = []
    for c in range(1, run.cfg.cycles + 1):
        cdir = run.paths.cycle(run.r, name, c)
        done = RunPaths.metrics(cdir)
        if done.exists():  # finished earlier: replay its selection only
            state.labelled_map[load_selection(RunPaths.selection(cdir))["query_indices"]] = c
            state.aux_ready = state.aux is not None
            run.clock.step(computed=False)
        else:
            if c > 1:  # cycle 1 starts from the base model already in memory
                load_checkpoint(previous, state.model, aux=state.aux if state.aux_ready else None)
            _cycle(run, state, c, cdir)
        values.append(float(read_json(done)["mean"]))
        previous = RunPaths.model(cdir)
    atomic_save_npy(run.paths.labelled(run.r, name), state.labelled_map)
    return values


def _cycle(run: _Run, state: _Cycles, c: int, cdir: Path) -> None:
    """One cycle: (fit the auxiliary head,) select, label, retrain, evaluate, save."""
    cfg, name = run.cfg, state.name
    timer = PhaseTimer(cfg.device)
    if state.aux is not None and not state.aux_ready:  # fit the head on the frozen base model
        _fit_head(run, state, timer)
    selection = RunPaths.selection(cdir)
    if selection.exists():
        pool_indices = load_selection(selection)["query_indices"]
    else:
        pool_indices = _select(run, state, c, cdir, timer)
    state.labelled_map[pool_indices] = c
    if cfg.retrain == "scratch":
        state.model = _new_model(cfg, _cycle_seed(run, name, c, "init"))
        if state.aux is not None:
            state.aux = _fresh(state.aux, _cycle_seed(run, name, c, "aux"))
    train_set, pool_idx = labelled_set(run.data, state.labelled_map)
    keys = labelled_keys(run.data, pool_idx) if cfg.common_random_numbers else None
    run.log(f"run {run.r} {name} cycle {c}: retraining on {len(train_set)} images")
    with timer("train"):
        fit(state.model, train_set, cfg.cycle_train, seed=_cycle_seed(run, name, c),
            device=cfg.device, aux=state.aux, progress=run.progress, keys=keys)  # fmt: skip
    save_checkpoint(RunPaths.model(cdir), state.model, aux=state.aux)
    with timer("evaluate"):
        metrics = _evaluate(state.model, run)
    metrics["n_labelled"] = int(run.data.n_base + (state.labelled_map >= 0).sum())
    metrics["seconds"] = timer.seconds
    atomic_save_npy(run.paths.labelled(run.r, name), state.labelled_map)
    atomic_write_json(RunPaths.metrics(cdir), metrics)
    run.log(f"run {run.r} {name} cycle {c}: {_metric(metrics)} {run.clock.step(computed=True)}")
    if cfg.keep_checkpoints == "last" and c > 1:
        RunPaths.model(run.paths.cycle(run.r, name, c - 1)).unlink(missing_ok=True)


def _cycle_seed(run: _Run, name: str, c: int, *parts: str) -> int:
    """The seed of cycle ``c``'s retraining: shared by every strategy of the (run, cycle) with
    common random numbers, the strategy's own otherwise."""
    cfg = run.cfg
    if cfg.common_random_numbers:
        return stable_seed(cfg.seed, run.r, "common", c, *parts)
    return stable_seed(cfg.seed, run.r, name, c, *parts)


def _fit_head(run: _Run, state: _Cycles, timer: PhaseTimer) -> None:
    """Fit the strategy's auxiliary head (Learning Loss) on the frozen base model."""
    cfg = run.cfg
    seed = stable_seed(cfg.seed, run.r, state.name, "aux")
    state.aux.load_state_dict(_fresh(state.aux, seed).state_dict())
    epochs = state.strategy.head_epochs
    with timer("aux"):
        train_set = labelled_set(run.data, state.labelled_map)[0]
        fit_auxiliary(state.model, state.aux, train_set, cfg, seed=seed, epochs=epochs)
    state.aux_ready = True


def _select(run: _Run, state: _Cycles, c: int, cdir: Path, timer: PhaseTimer) -> np.ndarray:
    """Score the unlabelled pool, select, save ``selection.npz``; returns the pool indices."""
    cfg, name, labelled_map = run.cfg, state.name, state.labelled_map
    rng = np.random.default_rng([cfg.seed, run.r, stable_seed(name), c])
    unlabelled = np.flatnonzero(labelled_map < 0)
    run.log(f"run {run.r} {name} cycle {c}: scoring {len(unlabelled)} pool images")
    needs = check_needs(state.strategy.needs, cfg.scoring.approx_check)
    with timer("score"):
        inputs = cycle_pool_inputs(needs, state.model, state.aux, run.data, labelled_map, cfg,
                                   progress=run.progress)  # fmt: skip
        positions, scores, details = state.strategy.select_explained(inputs, cfg.budget, rng)
        if needs != state.strategy.needs:
            details.update(_approx_check(run, state.strategy, inputs, scores, details))
    if "approx_check_spearman" in details:  # EGL++ approx measured on a sample
        run.log(f"run {run.r} {name} cycle {c}: approx vs exact on "
                f"{len(details['approx_check_rows'])} images: Spearman "
                f"{float(details['approx_check_spearman']):.4f}, top-10% overlap "
                f"{float(details['approx_check_top_overlap']):.2f}")  # fmt: skip
    if run.explain is not None and run.r == 0 and c == cfg.explain_cycle:
        run.explain(cdir, name, inputs, scores, positions, details, run.data, labelled_map, cfg)
    save_selection(RunPaths.selection(cdir), scores, unlabelled[positions], unlabelled, details)
    return unlabelled[positions]


def _approx_check(run: _Run, strategy, inputs: PoolInputs, scores, details) -> dict:
    """``approx_check_*`` details: exact EGL++ of a sample (its own generator, so the
    selection's is untouched) beside the approximate scores."""
    U = inputs.n_unlabelled
    n = min(run.cfg.scoring.approx_check, U)
    rows = np.sort(np.random.default_rng([n, U]).choice(U, size=n, replace=False))
    nb, source = details["neighbours"], strategy.label_source

    def exact_gradnorms(rows: np.ndarray) -> np.ndarray:
        return inputs.pair_gradnorms(nb[rows], source, rows)

    check = approx_agreement(scores, details["p"], nb, exact_gradnorms, rows)
    return {
        "approx_check_rows": check["rows"],
        "approx_check_exact": check["exact"],
        "approx_check_spearman": np.float64(check["spearman"]),
        "approx_check_top_overlap": np.float64(check["top_overlap"]),
    }


def _fresh(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """A copy of ``module`` with parameters re-drawn from ``seed`` (no global RNG touched)."""
    fresh = copy.deepcopy(module)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in fresh.parameters():
            if p.dim() > 1:
                bound = p[0].numel() ** -0.5
                p.uniform_(-bound, bound, generator=g)
            else:
                p.zero_()
    return fresh


def collect_results(cfg: ExperimentConfig, out: Path, n_labelled: list[int]) -> dict:
    """Gather every finished run into the results.json schema (unfinished runs left out)."""
    paths = RunPaths(out)
    scores: dict[str, list[list[float]]] = {s: [] for s in cfg.strategies}
    metric = None
    for r in range(cfg.runs):
        base = RunPaths.metrics(paths.base(r))
        cycles = {
            s: [RunPaths.metrics(paths.cycle(r, s, c)) for c in range(1, cfg.cycles + 1)]
            for s in cfg.strategies
        }
        if not base.exists() or not all(p.exists() for ps in cycles.values() for p in ps):
            continue
        b = read_json(base)
        metric = b["metric"]
        for s in cfg.strategies:
            scores[s].append([b["mean"]] + [read_json(p)["mean"] for p in cycles[s]])
    return {
        "task": f"pose/{cfg.dataset}",
        "metric": metric or cfg.metric,
        "higher_is_better": True,
        "n_labelled": n_labelled,
        "scores": scores,
        "config": config_to_dict(cfg),
    }


@dataclass(frozen=True)
class Experiment:
    """An experiment's checked settings, data and run directory: what every step reads."""

    cfg: ExperimentConfig
    data: PoseData
    paths: RunPaths

    @property
    def total_steps(self) -> int:
        """Base models and cycles of every run."""
        return self.cfg.runs * (1 + len(self.cfg.strategies) * self.cfg.cycles)


def open_experiment(
    cfg: ExperimentConfig, out: str | Path, log: Log = print, data: PoseData | None = None
) -> Experiment:
    """Check ``cfg`` against the run directory ``out`` (created, config.json and numerics.json
    written or compared), build the data; nothing is computed yet."""
    out = Path(out)
    cfg = cfg.resolved()  # the dataset's defaults (metric, MPII's joints): saved, reported
    check_device(cfg.device)  # before anything is written
    out.mkdir(parents=True, exist_ok=True)
    check_config(cfg, out)
    for warning in check_numerics(out, numerics(cfg.device)):
        log(warning)
    for name in cfg.strategies:  # fail on an unknown strategy before any work
        cfg.strategy.get(name)
    data = data or build_data(cfg, device=cfg.device)
    if data.split is not None:  # a COCO file's: the same on every resume
        check_split(out, data.split)
    log(f"data: {data.description}")
    return Experiment(cfg, data, RunPaths(out))


def _quiet(_message: str) -> None:
    pass


def _task_run(exp: Experiment, r: int, log: Log, explain: Explain | None) -> _Run:
    return _Run(exp.cfg, exp.data, exp.paths, r, log, explain, _Clock(exp.total_steps),
                progress=False)  # fmt: skip


def base_task(exp: Experiment, r: int, log: Log = _quiet, explain: Explain | None = None) -> None:
    """Run ``r``'s initial labelled set and base model (read back when done), no progress bar."""
    run = _task_run(exp, r, log, explain)
    _base_model(run, _initial(run))


def chain_task(
    exp: Experiment, r: int, name: str, log: Log = _quiet, explain: Explain | None = None
) -> None:
    """Strategy ``name``'s cycles of run ``r`` (resumed), from the run's saved base model."""
    run = _task_run(exp, r, log, explain)
    _strategy_cycles(run, name, _load_base(run), _initial(run))


def write_results(exp: Experiment) -> dict:
    """results.json of what the run directory holds; returns it."""
    cfg = exp.cfg
    n_labelled = [exp.data.n_base + cfg.initial + c * cfg.budget for c in range(cfg.cycles + 1)]
    results = collect_results(cfg, exp.paths.root, n_labelled)
    atomic_write_json(exp.paths.results, results)
    return results


def run_experiment(
    cfg: ExperimentConfig,
    out: str | Path,
    log: Log = print,
    data: PoseData | None = None,
    explain: Explain | None = None,
) -> dict:
    """Run or resume the experiment in ``out`` in this process; returns the results.json
    dictionary.

    ``explain`` draws the figures of run 0's selection at ``cfg.explain_cycle`` (``eglpp run``
    passes :func:`eglpp.report.explain.explain_selection`); None draws nothing. Several
    processes, GPUs or nodes: :func:`eglpp.experiment.ranks.run_ranks`, the same results.
    """
    exp = open_experiment(cfg, out, log, data)
    clock = _Clock(exp.total_steps)
    for r in range(exp.cfg.runs):
        run = _Run(exp.cfg, exp.data, exp.paths, r, log, explain, clock)
        initial = _initial(run)
        base_model = _base_model(run, initial)
        for name in exp.cfg.strategies:
            _strategy_cycles(run, name, base_model, initial)
    return write_results(exp)


def default_jobs(cfg: ExperimentConfig) -> int:
    """Processes that fill this machine: on a CPU, ``cores // threads`` at torch's current
    thread count; on ``cuda`` (no index) one per visible GPU; capped by the (run, strategy)
    tasks; 1 on a given GPU (``cuda:1``) or another device."""
    device, tasks = torch.device(cfg.device), cfg.runs * len(cfg.strategies)
    if device.type == "cpu":
        return max(1, min(usable_cores() // torch.get_num_threads(), tasks))
    if device.type == "cuda" and device.index is None:
        return max(1, min(torch.cuda.device_count(), tasks))
    return 1
