"""The quick preset's base model: test PCK@0.2 and training time of candidate recipes.

Each candidate is the quick preset with some fields replaced (the rendered data's look and
difficulty are never changed: same renderer, same domains, same test set). For each it renders
the data, trains the base model on the initial labelled set (plus a separately rendered base
set where ``n_base`` is set) and evaluates on the quick test set. A "bigger model" row shows
what the same data allows with more capacity and time, so a bound set by the data shows up.

    python benchmarks/quick_base.py --threads 1 --out benchmarks/results/quick_base.json
    python benchmarks/quick_base.py --runs 3 --only "quick now (lr 2.4e-2);lr 1.6e-2"  # by name
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from eglpp.cli.run import apply_settings
from eglpp.experiment.config import ExperimentConfig, config_from_dict, config_to_dict, preset
from eglpp.experiment.data import build_data, labelled_set
from eglpp.pose.hourglass import StackedHourglass
from eglpp.pose.inference import evaluate
from eglpp.pose.train import fit
from eglpp.seeds import stable_seed

#: The base recipe before the learning-rate sweep: Adam at a peak of 2e-3.
OLD = {"base_train.lr": 0.002}


def candidates(quick: ExperimentConfig) -> dict[str, dict]:
    """name -> the config fields (dotted) each candidate changes from the quick preset."""
    return {
        # at lr 2e-3, the recipe before the learning-rate sweep
        "before (200 images, 40 ep)": {**OLD, "n_base": 0, "base_train.epochs": 40},
        "base set 800 + 200, 18 ep, lr 2e-3": OLD,
        "base set 800 + 200, 20 ep": {**OLD, "base_train.epochs": 20},
        "base set 800 + 200, 24 ep": {**OLD, "base_train.epochs": 24},
        "base set 1800 + 200, 12 ep": {**OLD, "n_base": 1800, "base_train.epochs": 12},
        "48 channels, base set 800 + 200, 15 ep": {
            **OLD,
            "model.channels": 48,
            "base_train.epochs": 15,
        },
        "lr 2e-3, sigma 1.0": {**OLD, "base_train.sigma": 1.0},
        "lr 2e-3, sigma 2.0": {**OLD, "base_train.sigma": 2.0},
        "lr 2e-3, batch 32 (half the steps)": {**OLD, "base_train.batch_size": 32},
        "bigger model: 64 channels, base set 1800 + 200, 12 ep": {
            **OLD,
            "model.channels": 64,
            "n_base": 1800,
            "base_train.epochs": 12,
        },
        # the learning-rate sweep (18 epochs of the base set 800 + 200)
        "lr 4e-3": {"base_train.lr": 0.004},
        "lr 4e-3, sigma 2.0": {"base_train.lr": 0.004, "base_train.sigma": 2.0},
        "lr 8e-3": {"base_train.lr": 0.008},
        "lr 1.2e-2": {"base_train.lr": 0.012},
        "lr 1.6e-2": {"base_train.lr": 0.016},
        "quick now (lr 2.4e-2)": {},
    }


def apply(cfg: ExperimentConfig, changes: dict) -> ExperimentConfig:
    """``cfg`` with dotted fields replaced, as ``eglpp run --set KEY=VALUE`` does."""
    settings = [f"{key}={json.dumps(value)}" for key, value in changes.items()]
    return config_from_dict(apply_settings(config_to_dict(cfg), settings))


def measure(cfg: ExperimentConfig, run: int) -> dict:
    """Train run ``run``'s base model as the experiment does; PCK and seconds."""
    cfg = cfg.resolved()
    data = build_data(cfg)
    rng = np.random.default_rng([cfg.seed, run])
    labelled_map = np.full(len(data.pool), -1)
    labelled_map[rng.choice(len(data.pool), size=cfg.initial, replace=False)] = 0
    train_set, _ = labelled_set(data, labelled_map)
    model = StackedHourglass(cfg.model).reset_parameters(
        torch.Generator().manual_seed(stable_seed(cfg.seed, run, "init"))
    )
    t0 = time.perf_counter()
    fit(model, train_set, cfg.base_train, seed=stable_seed(cfg.seed, run, "base"), progress=False)
    seconds = time.perf_counter() - t0
    metrics = evaluate(model, data.test, metric=cfg.metric, alpha=cfg.alpha)
    steps = cfg.base_train.epochs * -(-len(train_set) // cfg.base_train.batch_size)
    return {
        "pck": 100 * metrics["mean"],
        "train_seconds": seconds,
        "images": len(train_set),
        "steps": steps,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1, help="base models per candidate (run 0, 1, …)")
    ap.add_argument("--only", default="", help="candidate names separated by ';' (default: all)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/quick_base.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    quick = preset("quick")
    chosen = [s.strip() for s in args.only.split(";") if s.strip()]
    rows = []
    print("| candidate | images | steps | PCK@0.2 % | train s |\n|---|---|---|---|---|")
    for name, changes in candidates(quick).items():
        if chosen and name not in chosen:
            continue
        cfg = apply(quick, changes)
        results = [measure(cfg, r) for r in range(args.runs)]
        pck = [r["pck"] for r in results]
        secs = [r["train_seconds"] for r in results]
        row = {"candidate": name, "changes": changes, "runs": results,
               "pck_mean": float(np.mean(pck)),
               "train_seconds_mean": float(np.mean(secs))}  # fmt: skip
        rows.append(row)
        print(f"| {name} | {results[0]['images']} | {results[0]['steps']} | "
              f"{row['pck_mean']:.2f} | {row['train_seconds_mean']:.0f} |", flush=True)  # fmt: skip
    env = {"threads": args.threads, "torch": torch.__version__,
           "load_average_1min": os.getloadavg()[0]}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"environment": env, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
