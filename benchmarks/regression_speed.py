"""Benchmark: seconds to score a pool of 100,000 rows with a 10-member ensemble (2 CPU cores).

For each family (linear, mlp; gp optional), fits the ensemble on a small labelled set, then
times the scoring of the pool: the ensemble predictive (member means and variances, the main
model and its per-example ‖∇_θ f‖², exact via torch.func for the network) plus the ``egl``
score, and the conditioned ``egl-diverse`` batch of 100 on top. Rows are synthetic Gaussian
features (scoring cost does not depend on the values). Prints a table and writes JSON.

    python benchmarks/regression_speed.py --pool 100000 --members 10
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from eglpp.io import atomic_write_json
from eglpp.regression.batch import conditioned_batch
from eglpp.regression.ensembles import EnsembleConfig, fit_ensemble
from eglpp.regression.strategies import egl


def _best_of(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pool", type=int, default=100_000)
    ap.add_argument("--features", type=int, default=10)
    ap.add_argument("--labelled", type=int, default=200)
    ap.add_argument("--members", type=int, default=10)
    ap.add_argument("--families", default="linear,mlp")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="benchmarks/results/regression_speed.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)  # a script, not the library: fixes the core count
    rng = np.random.default_rng(0)
    w = rng.normal(size=args.features)
    x_lab = rng.normal(size=(args.labelled, args.features))
    y_lab = np.tanh(x_lab @ w) + 0.1 * rng.normal(size=args.labelled)
    pool = rng.normal(size=(args.pool, args.features))
    rows = []
    print(
        f"pool {args.pool} rows × {args.features} features, K = {args.members}, "
        f"{args.threads} threads (torch), best of {args.repeats}"
    )
    print(f"{'family':8s} {'fit s':>8s} {'predictive+egl s':>17s} {'egl-diverse (100) s':>20s}")
    for family in args.families.split(","):
        config = EnsembleConfig(family=family, n_members=args.members)
        t0 = time.perf_counter()
        ens = fit_ensemble(x_lab, y_lab, config, seed=1)
        fit_s = time.perf_counter() - t0

        def score(ens=ens):
            p = ens.predict(pool)
            return p, egl(p.grad_sq, p.mean, p.var, p.f)

        score_s, (p, _) = _best_of(score, args.repeats)
        batch_s, _ = _best_of(
            lambda p=p: conditioned_batch(
                p.grad_sq, p.mean, p.var, p.f, 100, np.random.default_rng(0)
            ),
            args.repeats,
        )
        rows.append(
            {"family": family, "fit_s": fit_s, "score_s": score_s, "diverse_batch_100_s": batch_s}
        )
        print(f"{family:8s} {fit_s:8.2f} {score_s:17.3f} {batch_s:20.3f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out, {"config": vars(args), "results": rows})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
