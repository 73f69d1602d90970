"""Pool-based active-learning experiment for regression: runs × strategies × cycles.

One **run** (a seed) splits the rows into a held-out test set and a pool, draws the initial
labelled set from the pool, and, for every strategy from that same start, repeats ``cycles``
times: fit the ensemble on the labelled rows, evaluate the main model on the test split
(RMSE, and the Gaussian NLL of ``N(f, mean_k[σ_k² + (μ_k - f)²])``), score the unlabelled pool,
label ``budget`` rows. The fit at cycle ``c`` of run ``r`` uses the same seed for every
strategy, so strategies differ only by what they labelled. Features are standardised with the
pool's statistics (the pool's inputs are known in pool-based learning); targets stay in their
units.

Every finished run is saved (``DIR/runs/run_NNN.json``, atomically); restarting the same
configuration reuses them. The experiment writes ``results.json`` (RMSE) and
``results_nll.json`` (NLL) in the schema of :mod:`eglpp.stats`.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from rich.progress import Progress

from eglpp.io import atomic_write_json, read_json
from eglpp.regression.datasets import Table
from eglpp.regression.ensembles import EnsembleConfig, fit_ensemble
from eglpp.regression.registry import PoolState, make_strategy

__all__ = [
    "ExperimentConfig",
    "check_folder",
    "check_protocol",
    "gaussian_nll",
    "run_one",
    "run_experiment",
]


@dataclass(frozen=True)
class ExperimentConfig:
    """The protocol of one experiment."""

    strategies: tuple[str, ...] = ("egl", "emcm", "variance", "random")
    ensemble: EnsembleConfig = field(default_factory=EnsembleConfig)
    runs: int = 5  # seeds; pairs of the t-test
    initial: int = 20  # random labelled rows to start
    budget: int = 10  # rows labelled per cycle
    cycles: int = 10  # labelling cycles after the initial set
    seed: int = 0
    test_fraction: float = 0.25  # held-out rows per run
    max_rows: int | None = None  # use a random subset of at most this many rows per run
    task: str = "regression"  # a label for results.json (e.g. the dataset)

    def __post_init__(self) -> None:
        for name in ("runs", "initial", "budget", "cycles"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_rows is not None and self.max_rows < 1:
            raise ValueError(f"max_rows must be at least 1 (None: every row), got {self.max_rows}")
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in (0, 1), got {self.test_fraction}")
        if not self.strategies:
            raise ValueError("strategies is empty; give at least one strategy name")
        for name in self.strategies:
            make_strategy(name)  # raises on an unknown name, listing the known ones


def check_protocol(n_rows: int, config: ExperimentConfig, source: str = "data") -> tuple[int, int]:
    """(n_test, n_pool); raise ``ValueError`` when the rows cannot hold the protocol."""
    n = min(n_rows, config.max_rows) if config.max_rows else n_rows
    n_test = max(int(round(n * config.test_fraction)), 2)
    n_pool = n - n_test
    need = config.initial + config.budget * config.cycles
    if n_pool < need + 1:
        raise ValueError(
            f"{source}: too few rows: {n} rows leave {n_pool} for the pool after the "
            f"{n_test}-row test split, but initial + budget × cycles = {config.initial} + "
            f"{config.budget} × {config.cycles} = {need} (plus one left unlabelled) are needed"
        )
    if config.initial < 2:
        raise ValueError(f"initial must be at least 2 to fit an ensemble, got {config.initial}")
    return n_test, n_pool


def gaussian_nll(y: np.ndarray, mean: np.ndarray, var: np.ndarray) -> float:
    """Mean negative log-likelihood of ``y`` under ``N(mean, var)`` (var floored at 1e-12)."""
    var = np.maximum(var, 1e-12)
    return float(np.mean(0.5 * np.log(2 * np.pi * var) + 0.5 * (y - mean) ** 2 / var))


def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence(list(parts)).generate_state(1)[0])


def run_one(
    table: Table,
    config: ExperimentConfig,
    run: int,
    on_cycle: Callable[[], object] | None = None,
) -> dict:
    """One run: ``{"rmse": {strategy: [..]}, "nll": {...}, "n_labelled": [...]}``."""
    n_test, n_pool = check_protocol(len(table), config, table.source)
    rng = np.random.default_rng(_seed(config.seed, run))
    rows = rng.permutation(len(table))[: n_test + n_pool]
    test, pool = rows[:n_test], rows[n_test:]
    mu, sd = table.x[pool].mean(0), table.x[pool].std(0)
    x = (table.x - mu) / np.where(sd > 1e-12, sd, 1.0)
    y = table.y
    initial = rng.permutation(n_pool)[: config.initial]

    def evaluate(ens) -> tuple[float, float]:
        p = ens.predict(x[test])
        rmse = float(np.sqrt(np.mean((p.f - y[test]) ** 2)))
        return rmse, gaussian_nll(y[test], p.f, p.total_variance)

    first = fit_ensemble(
        x[pool[initial]], y[pool[initial]], config.ensemble, _seed(config.seed, run, 0)
    )
    first_scores = evaluate(first)
    out = {"rmse": {}, "nll": {}}
    for name in config.strategies:
        strategy = make_strategy(name)
        select_rng = np.random.default_rng(_seed(config.seed, run, zlib.crc32(name.encode())))
        labelled = np.zeros(n_pool, dtype=bool)
        labelled[initial] = True
        ens, (rmse, nll) = first, first_scores
        rmses, nlls = [rmse], [nll]
        for cycle in range(1, config.cycles + 1):
            lab, unl = np.flatnonzero(labelled), np.flatnonzero(~labelled)
            state = PoolState(
                x_labelled=x[pool[lab]],
                y_labelled=y[pool[lab]],
                x_unlabelled=x[pool[unl]],
                predictive=ens.predict(x[pool[unl]]),
                ensemble=ens,
            )
            query = strategy.select(state, config.budget, select_rng)
            if len(np.unique(query)) != config.budget:
                raise RuntimeError(
                    f"strategy '{name}' returned {query!r}, not {config.budget} rows"
                )
            labelled[unl[query]] = True
            lab = np.flatnonzero(labelled)
            ens = fit_ensemble(
                x[pool[lab]], y[pool[lab]], config.ensemble, _seed(config.seed, run, cycle)
            )
            rmse, nll = evaluate(ens)
            rmses.append(rmse)
            nlls.append(nll)
            if on_cycle is not None:
                on_cycle()
        out["rmse"][name], out["nll"][name] = rmses, nlls
    out["n_labelled"] = [config.initial + c * config.budget for c in range(config.cycles + 1)]
    return out


def _config_dict(config: ExperimentConfig, table: Table) -> dict:
    d = asdict(config)
    d["strategies"] = list(config.strategies)
    d["data"] = {
        "source": table.source,
        "target": table.target_name,
        "rows": len(table),
        "features": list(table.feature_names),
    }
    return d


def run_experiment(
    table: Table, config: ExperimentConfig, out_dir: str | Path | None = None, progress: bool = True
) -> tuple[dict, dict]:
    """All runs; returns ``(results_rmse, results_nll)`` and writes them under ``out_dir``."""

    check_protocol(len(table), config, table.source)
    cfg = _config_dict(config, table)
    if out_dir is not None:
        check_folder(Path(out_dir), cfg)
    runs_dir = Path(out_dir) / "runs" if out_dir is not None else None
    per_run = []
    total = config.runs * len(config.strategies) * config.cycles
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task(f"{config.task}: {config.runs} runs", total=total)
        for r in range(config.runs):
            path = runs_dir / f"run_{r:03d}.json" if runs_dir is not None else None
            if path is not None and path.is_file():
                saved = read_json(path)
                if not _differences(saved.get("config"), cfg):
                    per_run.append(saved)
                    bar.advance(task, len(config.strategies) * config.cycles)
                    continue
            res = run_one(table, config, r, on_cycle=lambda: bar.advance(task))
            res["config"] = cfg
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_json(path, res)
            per_run.append(res)
    results = []
    for metric, key in (("RMSE", "rmse"), ("Gaussian NLL", "nll")):
        results.append(
            {
                "task": config.task,
                "metric": metric,
                "higher_is_better": False,
                "n_labelled": per_run[0]["n_labelled"],
                "scores": {s: [run[key][s] for run in per_run] for s in config.strategies},
                "config": cfg,
            }
        )
    if out_dir is not None:
        _write_outputs(Path(out_dir), *results)
    return results[0], results[1]


def _differences(saved: object, cfg: dict) -> list[str]:
    """The settings in which a saved config differs from ``cfg``; the number of runs may grow
    (run r depends only on the seed and r)."""
    saved = saved if isinstance(saved, dict) else {}
    return sorted(k for k in set(cfg) | set(saved) if k != "runs" and cfg.get(k) != saved.get(k))


def check_folder(out: Path, cfg: dict) -> None:
    """Refuse a folder whose results (or finished runs) come from another configuration: they
    would be overwritten (a rerun of the same one, or with more runs, reuses its runs)."""
    saved = [out / "results.json", *sorted((out / "runs").glob("run_*.json"))]
    for path in saved:
        if not path.is_file():
            continue
        diff = _differences(read_json(path).get("config"), cfg)
        if diff:
            raise ValueError(
                f"{out} holds results of another configuration ({path.name} differs in: "
                f"{', '.join(diff)}); use another --out or the same settings"
            )


def _write_outputs(out: Path, rmse: dict, nll: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "results.json", rmse)
    atomic_write_json(out / "results_nll.json", nll)
