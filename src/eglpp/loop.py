"""The active-learning loop for pose: runs × strategies × cycles, in one process, resumable.

A **run** is one seed: an initial labelled set and a base model trained on it, shared by every
strategy. Each strategy then runs ``cycles`` cycles of score → select ``budget`` → label →
retrain → evaluate. The loop computes the pool outputs a strategy ``needs`` and never branches
on which strategy it runs.

Run directory (every file written atomically; a step is done when its last file exists)::

    OUT/config.json                      the ExperimentConfig (a resume must match it)
    OUT/run-00/initial.npy               pool indices labelled before cycle 1
    OUT/run-00/base/model.pt, metrics.json
    OUT/run-00/<strategy>/cycle-01/selection.npz   scores, query_indices (pool space), details
    OUT/run-00/<strategy>/cycle-01/model.pt        the retrained model (and auxiliary head)
    OUT/run-00/<strategy>/cycle-01/metrics.json    done marker of the cycle
    OUT/run-00/<strategy>/labelled.npy   the labelled-cycle array (-1 never, 0 initial, c cycle)
    OUT/results.json, table.md, table.csv, curves.png

``config.json``, ``selection.npz`` and ``explain_*.png`` are written by :mod:`eglpp.pose.run_files`.

Every random choice draws from a generator seeded by (seed, run, strategy, cycle, step), so a
resumed run makes exactly the choices of an uninterrupted one.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from eglpp.devices import check_device
from eglpp.io import atomic_save_npy, atomic_write_json, load_npy, read_json
from eglpp.pose.checkpoint import load_checkpoint, save_checkpoint
from eglpp.pose.data import PoseData, build_data, stable_seed
from eglpp.pose.distributed_run import cycle_pool_inputs
from eglpp.pose.experiment import ExperimentConfig, config_to_dict
from eglpp.pose.hourglass import StackedHourglass
from eglpp.pose.inference import evaluate
from eglpp.pose.run_files import (
    check_config,
    explain_selection,
    load_selection,
    save_selection,
)
from eglpp.pose.scoring import fit_auxiliary, labelled_set
from eglpp.pose.timing import PhaseTimer
from eglpp.pose.train import fit
from eglpp.strategies import make_strategy

__all__ = ["run_experiment", "collect_results", "RunPaths"]

Log = Callable[[str], None]


@dataclass(frozen=True)
class RunPaths:
    """Where one run's files live."""

    root: Path

    def run(self, r: int) -> Path:
        return self.root / f"run-{r:02d}"

    def base(self, r: int) -> Path:
        return self.run(r) / "base"

    def strategy(self, r: int, s: str) -> Path:
        return self.run(r) / s

    def cycle(self, r: int, s: str, c: int) -> Path:
        return self.strategy(r, s) / f"cycle-{c:02d}"


def _new_model(cfg: ExperimentConfig, seed: int) -> StackedHourglass:
    return StackedHourglass(cfg.model).reset_parameters(torch.Generator().manual_seed(seed))


def _evaluate(model, data: PoseData, cfg: ExperimentConfig) -> dict:
    return evaluate(
        model,
        data.test,
        metric=cfg.metric,
        alpha=cfg.alpha,
        batch_size=cfg.batch_size,
        device=cfg.device,
    )


def _base_model(cfg, data, paths: RunPaths, r: int, initial: np.ndarray, log: Log):
    done = paths.base(r) / "metrics.json"
    model = _new_model(cfg, stable_seed(cfg.seed, r, "init"))
    if done.exists():
        load_checkpoint(paths.base(r) / "model.pt", model)
        return model, read_json(done)
    labelled_map = np.full(len(data.pool), -1)
    labelled_map[initial] = 0
    train_set, _ = labelled_set(data, labelled_map)
    log(f"run {r}: training the base model on {len(train_set)} images")
    timer = PhaseTimer(cfg.device)
    with timer("train"):
        fit(
            model,
            train_set,
            cfg.base_train,
            seed=stable_seed(cfg.seed, r, "base"),
            device=cfg.device,
            progress=True,
        )
    save_checkpoint(paths.base(r) / "model.pt", model)
    with timer("evaluate"):
        metrics = _evaluate(model, data, cfg)
    atomic_write_json(done, {**metrics, "seconds": timer.seconds})
    log(f"run {r}: base model {metrics['metric']} = {metrics['mean']:.4f}")
    return model, metrics


def _strategy_cycles(cfg, data, paths, r, name, base_model, initial, log) -> list[float]:
    """Run (or resume) one strategy's cycles; returns its metric after each cycle."""
    strategy = make_strategy(name, **_strategy_kwargs(cfg, name))
    labelled_map = np.full(len(data.pool), -1, dtype=np.int64)
    labelled_map[initial] = 0
    model = copy.deepcopy(base_model)
    aux = strategy.auxiliary(model.feature_channels())
    aux_ready = False
    previous = paths.base(r) / "model.pt"
    values = []
    for c in range(1, cfg.cycles + 1):
        cdir = paths.cycle(r, name, c)
        done = cdir / "metrics.json"
        if done.exists():  # finished earlier: replay its selection only
            sel = load_selection(cdir / "selection.npz")
            labelled_map[sel["query_indices"]] = c
            values.append(float(read_json(done)["mean"]))
            previous = cdir / "model.pt"
            aux_ready = aux is not None
            continue
        if c > 1:  # cycle 1 starts from the base model already in memory
            load_checkpoint(previous, model, aux=aux if aux_ready else None)
        timer = PhaseTimer(cfg.device)
        if aux is not None and not aux_ready:  # fit the head on the frozen base model
            seed = stable_seed(cfg.seed, r, name, "aux")
            aux.load_state_dict(_fresh(aux, seed).state_dict())
            with timer("aux"):
                fit_auxiliary(
                    model,
                    aux,
                    labelled_set(data, labelled_map)[0],
                    cfg,
                    seed=seed,
                    epochs=cfg.strategy.ll_head_epochs,
                )
            aux_ready = True
        if (cdir / "selection.npz").exists():
            sel = load_selection(cdir / "selection.npz")
        else:
            rng = np.random.default_rng([cfg.seed, r, stable_seed(name), c])
            unlabelled = np.flatnonzero(labelled_map < 0)
            log(f"run {r} {name} cycle {c}: scoring {len(unlabelled)} pool images")
            with timer("score"):
                inputs = cycle_pool_inputs(strategy.needs, model, aux, data, labelled_map, cfg)
                query, scores, details = strategy.select_explained(inputs, cfg.budget, rng)
            if "approx_check_spearman" in details:  # EGL++ approx measured on a sample
                log(f"run {r} {name} cycle {c}: approx vs exact on "
                    f"{len(details['approx_check_rows'])} images: Spearman "
                    f"{float(details['approx_check_spearman']):.4f}, top-10% overlap "
                    f"{float(details['approx_check_top_overlap']):.2f}")  # fmt: skip
            sel = {
                "scores": scores,
                "query_indices": unlabelled[query],
                "unlabelled": unlabelled,
                **{f"detail_{k}": v for k, v in details.items()},
            }
            if r == 0 and c == cfg.explain_cycle:
                explain_selection(
                    cdir, name, inputs, scores, query, details, data, labelled_map, cfg
                )
            save_selection(cdir / "selection.npz", scores, unlabelled[query], unlabelled, details)
        labelled_map[sel["query_indices"]] = c
        if cfg.retrain == "scratch":
            model = _new_model(cfg, stable_seed(cfg.seed, r, name, c, "init"))
            if aux is not None:
                aux = _fresh(aux, stable_seed(cfg.seed, r, name, c, "aux"))
        train_set, _ = labelled_set(data, labelled_map)
        log(f"run {r} {name} cycle {c}: retraining on {len(train_set)} images")
        with timer("train"):
            fit(
                model,
                train_set,
                cfg.cycle_train,
                seed=stable_seed(cfg.seed, r, name, c),
                device=cfg.device,
                aux=aux,
                progress=True,
            )
        save_checkpoint(cdir / "model.pt", model, aux=aux)
        with timer("evaluate"):
            metrics = _evaluate(model, data, cfg)
        metrics["n_labelled"] = int(data.n_base + (labelled_map >= 0).sum())
        metrics["seconds"] = timer.seconds
        atomic_save_npy(paths.strategy(r, name) / "labelled.npy", labelled_map)
        atomic_write_json(done, metrics)
        log(f"run {r} {name} cycle {c}: {metrics['metric']} = {metrics['mean']:.4f}")
        if cfg.keep_checkpoints == "last" and c > 1:
            (paths.cycle(r, name, c - 1) / "model.pt").unlink(missing_ok=True)
        previous = cdir / "model.pt"
        values.append(float(metrics["mean"]))
    atomic_save_npy(paths.strategy(r, name) / "labelled.npy", labelled_map)
    return values


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


def _strategy_kwargs(cfg: ExperimentConfig, name: str) -> dict:
    s = cfg.strategy
    table = {
        "egl++": {
            "perplexity": s.perplexity,
            "k": s.k,
            "renormalise": s.renormalise,
            "calibration": s.calibration,
            "label_source": s.label_source,
            "device": cfg.device,
            "estimator": s.estimator,
            "approx_check": s.approx_check,
        },
        "multipeak": {"max_peaks": s.multipeak_max_peaks, "min_distance": s.multipeak_min_distance},
        "learning-loss": {
            "detach_features": s.ll_detach,
            "objective": s.ll_objective,
            "weight": s.ll_weight,
        },
    }
    return table.get(name, {})


def collect_results(cfg: ExperimentConfig, out: Path, n_labelled: list[int]) -> dict:
    """Gather every finished run into the results.json schema (unfinished runs left out)."""
    paths = RunPaths(out)
    scores: dict[str, list[list[float]]] = {s: [] for s in cfg.strategies}
    metric = None
    for r in range(cfg.runs):
        base = paths.base(r) / "metrics.json"
        cycles = {
            s: [paths.cycle(r, s, c) / "metrics.json" for c in range(1, cfg.cycles + 1)]
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


def run_experiment(
    cfg: ExperimentConfig, out: str | Path, log: Log = print, data: PoseData | None = None
) -> dict:
    """Run or resume the experiment in ``out``; returns the results.json dictionary."""
    out = Path(out)
    check_device(cfg.device)  # before anything is written
    out.mkdir(parents=True, exist_ok=True)
    check_config(cfg, out)
    for name in cfg.strategies:  # fail on an unknown strategy before any work
        make_strategy(name, **_strategy_kwargs(cfg, name))
    data = data or build_data(cfg, device=cfg.device)
    log(f"data: {data.description}")
    paths = RunPaths(out)
    n_labelled = [data.n_base + cfg.initial + c * cfg.budget for c in range(cfg.cycles + 1)]
    for r in range(cfg.runs):
        init_path = paths.run(r) / "initial.npy"
        if init_path.exists():
            initial = load_npy(init_path)
        else:
            rng = np.random.default_rng([cfg.seed, r])
            initial = np.sort(rng.choice(len(data.pool), size=cfg.initial, replace=False))
            atomic_save_npy(init_path, initial)
        base_model, _ = _base_model(cfg, data, paths, r, initial, log)
        for name in cfg.strategies:
            _strategy_cycles(cfg, data, paths, r, name, base_model, initial, log)
    results = collect_results(cfg, out, n_labelled)
    atomic_write_json(out / "results.json", results)
    return results
