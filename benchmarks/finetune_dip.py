"""The first cycle's dip: how each fine-tuning recipe moves a converged base model.

On the rendered LSP → LSPET data of ``benchmarks/pose_al.py`` (or the synthetic data with
``--dataset synthetic``), each run trains one base model, labels ``--budget`` random pool
images (the same ones for every recipe), fine-tunes a copy of the base model with each recipe,
and evaluates it. A recipe that only adds 10 % more labels should not lose accuracy: the
difference "after − base" is what cycle 1 of an experiment measures beside the selection.

    python benchmarks/finetune_dip.py --runs 3 --out benchmarks/results/finetune_dip.json
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from eglpp.experiment.config import config_from_dict, preset
from eglpp.experiment.data import build_data, labelled_keys, labelled_set
from eglpp.pose.hourglass import StackedHourglass
from eglpp.pose.inference import evaluate
from eglpp.pose.train import fit
from eglpp.seeds import stable_seed


def recipes(cycle_train, steps_per_epoch: int) -> dict:
    """name -> TrainConfig of each candidate fine-tuning recipe."""
    return {
        "constant lr (today)": cycle_train,
        "warm-up 1 epoch": replace(cycle_train, warmup_steps=steps_per_epoch),
        "cosine + warm-up 1 epoch": replace(
            cycle_train, schedule="cosine", warmup_steps=steps_per_epoch
        ),
        "lr / 5, constant": replace(cycle_train, lr=cycle_train.lr / 5),
        "lr / 5, cosine + warm-up": replace(
            cycle_train, lr=cycle_train.lr / 5, schedule="cosine", warmup_steps=steps_per_epoch
        ),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="lsp-lspet-rendered")
    ap.add_argument("--poses", type=Path, default=Path("../shared/data"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--budget", type=int, default=100)
    ap.add_argument("--n-pool", type=int, default=1000)
    ap.add_argument("--initial", type=int, default=200, help="synthetic: initial labelled")
    ap.add_argument("--n-test", type=int, default=500)
    ap.add_argument("--base-epochs", type=int, default=40)
    ap.add_argument("--cycle-epochs", type=int, default=6)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/finetune_dip.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    overrides = {"dataset": args.dataset, "n_pool": args.n_pool, "n_test": args.n_test,
                 "cycles": 1, "budget": args.budget,
                 "base_train": {"epochs": args.base_epochs},
                 "cycle_train": {"epochs": args.cycle_epochs}}  # fmt: skip
    if args.dataset == "lsp-lspet-rendered":  # the base set is LSP's poses
        overrides |= {"poses": str(args.poses), "initial": 0}
    else:
        overrides["initial"] = args.initial
    cfg = config_from_dict(overrides, base=preset("quick"), where="finetune_dip flags")
    data = build_data(cfg)
    print(f"data: {data.description}", flush=True)
    rows, start = [], time.perf_counter()
    for r in range(args.runs):
        rows += _run(cfg, data, r, args.budget)
    _table(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"argv": vars(args) | {"poses": str(args.poses), "out": str(args.out)},
            "seconds": time.perf_counter() - start, "threads": torch.get_num_threads()}  # fmt: skip
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(f"wrote {args.out}")


def _run(cfg, data, r: int, budget: int) -> list[dict]:
    rng = np.random.default_rng([cfg.seed, r])
    labelled_map = np.full(len(data.pool), -1)
    labelled_map[rng.choice(len(data.pool), size=cfg.initial, replace=False)] = 0
    base_set, _ = labelled_set(data, labelled_map)
    base = StackedHourglass(cfg.model).reset_parameters(torch.Generator().manual_seed(r))
    fit(base, base_set, cfg.base_train, seed=stable_seed(cfg.seed, r, "base"), progress=False)
    before = evaluate(base, data.test, batch_size=cfg.batch_size)["mean"]
    unlabelled = np.flatnonzero(labelled_map < 0)
    labelled_map[rng.choice(unlabelled, size=budget, replace=False)] = 1
    train_set, pool_idx = labelled_set(data, labelled_map)
    keys = labelled_keys(data, pool_idx)
    steps = max(1, len(train_set) // cfg.cycle_train.batch_size)
    out = []
    for name, recipe in recipes(cfg.cycle_train, steps).items():
        model = copy.deepcopy(base)
        fit(model, train_set, recipe, seed=stable_seed(cfg.seed, r, "common", 1), progress=False,
            keys=keys)  # fmt: skip
        after = evaluate(model, data.test, batch_size=cfg.batch_size)["mean"]
        out.append({"run": r, "recipe": name, "base": before, "after": after})
        print(f"run {r} {name:28s} base {100 * before:.2f} → {100 * after:.2f} "
              f"({100 * (after - before):+.2f})", flush=True)  # fmt: skip
    return out


def _table(rows: list[dict]) -> None:
    print("\n| recipe | after − base, PCK@0.2 points (mean ± std over runs) | runs |")
    print("|---|---|---|")
    for name in dict.fromkeys(r["recipe"] for r in rows):
        d = np.array([100 * (r["after"] - r["base"]) for r in rows if r["recipe"] == name])
        sd = d.std(ddof=1) if len(d) > 1 else float("nan")
        print(f"| {name} | {d.mean():+.2f} ± {sd:.2f} | {len(d)} |")


if __name__ == "__main__":
    main()
