"""The known-answer check of every strategy at scale, with a model that reads images.

The quick preset's network is trained as its base model is (the preset's base recipe on its base
set + initial images, rendered), or read from ``--checkpoint`` (a ``model.pt`` of that
architecture, e.g. ``runs/quick/run-00/base/model.pt``). The pool holds near-duplicates of
``--duplicates`` labelled images (same person, pose and appearance, a little pixel noise) and as
many new people. For each strategy: the share of the selection (``--budget``) that are
duplicates and P(a new person scores above a duplicate); for EGL++ at perplexity 2, 5 and 20
(K = 30): the twin's mean p(j|i) and its squared gradient norm over the other neighbours'.
``eglpp.experiment.known_answer`` says what each strategy should do and why.

    python benchmarks/known_answer.py --threads 1 --out benchmarks/results/known_answer.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from eglpp.experiment.config import preset
from eglpp.experiment.known_answer import duplicate_pool, known_answer
from eglpp.pose.checkpoint import load_checkpoint
from eglpp.pose.datasets.synthetic import RenderConfig, SyntheticPoseDataset
from eglpp.pose.hourglass import StackedHourglass
from eglpp.pose.inference import evaluate
from eglpp.pose.train import fit
from eglpp.seeds import stable_seed
from eglpp.strategies import make_strategy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--checkpoint", type=Path, default=None)
    ap.add_argument("--duplicates", type=int, default=200)
    ap.add_argument("--budget", type=int, default=100)
    ap.add_argument("--k", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/known_answer.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = preset(args.preset).resolved()
    render = RenderConfig(size=cfg.input_size, domain=cfg.base_domain)
    n_labelled = cfg.n_base + cfg.initial
    labelled = SyntheticPoseDataset(n_labelled, render, seed=stable_seed(args.seed, "ka-labelled"))
    new = SyntheticPoseDataset(args.duplicates, render, seed=stable_seed(args.seed, "ka-new"))
    test = SyntheticPoseDataset(cfg.n_test, render, seed=stable_seed(args.seed, "ka-test"))
    pool, twin = duplicate_pool(labelled, new, args.duplicates, seed=args.seed)
    model = StackedHourglass(cfg.model).reset_parameters(torch.Generator().manual_seed(args.seed))
    t0 = time.perf_counter()
    if args.checkpoint is not None:  # trained on other images: duplicates of *its* set unknown
        load_checkpoint(args.checkpoint, model)
        source = str(args.checkpoint)
    else:
        fit(model, labelled, cfg.base_train, seed=args.seed, progress=False)
        source = f"{args.preset} base recipe on {n_labelled} rendered people"
    train_seconds = time.perf_counter() - t0
    pck = {name: 100 * evaluate(model, ds, metric="pck", alpha=0.2)["mean"]
           for name, ds in (("labelled", labelled), ("test", test))}  # fmt: skip
    strategies = {
        "random": make_strategy("random"),
        "coreset": make_strategy("coreset"),
        "multipeak": make_strategy("multipeak"),
        **{f"egl++ perplexity {p:g}": make_strategy("egl++", k=args.k, perplexity=p)
           for p in (2.0, 5.0, 20.0)},
    }  # fmt: skip
    t0 = time.perf_counter()
    report = known_answer(model, labelled, pool, twin, strategies, args.budget,
                          sigma=cfg.base_train.sigma, seed=args.seed)  # fmt: skip
    print(f"model: {source}; PCK@0.2 {pck['labelled']:.1f} % on its labelled images, "
          f"{pck['test']:.1f} % on new people")  # fmt: skip
    print(f"pool: {args.duplicates} near-duplicates + {args.duplicates} new; budget "
          f"{args.budget}; duplicates whose nearest labelled embedding is the twin: "
          f"{100 * report['nn_twin']:.0f} %\n")  # fmt: skip
    print("| strategy | duplicates selected | P(new > duplicate) | p(twin) | twin ‖g‖² / others |")
    print("|---|---|---|---|---|")
    for name, row in report["strategies"].items():
        extra = (f"{row['p_twin']:.2f} | {row['gradnorm_twin_ratio']:.3f}" if "p_twin" in row
                 else "— | —")  # fmt: skip
        print(f"| {name} | {100 * row['duplicate_share']:.0f} % | {row['auc']:.2f} | {extra} |")
    result = {
        "model": source, "pck": pck, "train_seconds": train_seconds,
        "score_seconds": time.perf_counter() - t0, "duplicates": args.duplicates,
        "budget": args.budget, "k": args.k, "threads": args.threads,
        "cpu_count": os.cpu_count(), "load_average_after": os.getloadavg(), **report,
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
