"""Benchmark: regression active learning on the built-in real data sets, many strategies.

For each data set, the experiment of ``eglpp regression`` (runs × strategies × cycles, shared
initial sets and test splits) is run; the script prints, per data set, every strategy's area
under the RMSE curve and final RMSE (mean ± std over runs) with the one-tailed paired t-test
p-value against ``egl`` and against ``random``, then a win / tie / loss count against random
(p < 0.1 either way, on the AUC). Everything is written to one JSON file; each data set's
run folder (``--work``) keeps the per-run files, so an interrupted benchmark resumes.

    python benchmarks/regression_al.py --runs 10 --family linear

(``kldiv`` is left out of the default list only for time: like ``emvr`` it refits a regressor
per candidate; add it with ``--strategies``.)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from eglpp.io import atomic_write_json
from eglpp.regression.datasets import dataset_names, load_dataset
from eglpp.regression.ensembles import EnsembleConfig
from eglpp.regression.experiment import ExperimentConfig, run_experiment
from eglpp.stats import area_under_curve, paired_pvalue, summarize

STRATEGIES = (
    "egl,emcm,variance,random,egl-diverse,emcm-diverse,egl-density,egl-diverse-density,"
    "variance-density,gsx,igs,qbc,emvr,skal-emc"
)


def _vs(results: dict, name: str, other: str) -> float:
    x = np.asarray(results["n_labelled"], dtype=float)
    a = area_under_curve(x, np.asarray(results["scores"][name]))
    b = area_under_curve(x, np.asarray(results["scores"][other]))
    return paired_pvalue(a, b, higher_is_better=False)  # small: `name` has the lower RMSE


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default=",".join(dataset_names()))
    ap.add_argument("--strategies", default=STRATEGIES)
    ap.add_argument("--family", default="linear")
    ap.add_argument("--members", type=int, default=10)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--initial", type=int, default=20)
    ap.add_argument("--budget", type=int, default=5)
    ap.add_argument("--cycles", type=int, default=10)
    ap.add_argument("--max-rows", type=int, default=2000)
    ap.add_argument("--work", default="runs/bench_regression")
    ap.add_argument("--out", default=None, help="JSON (default benchmarks/results/...)")
    args = ap.parse_args()
    strategies = tuple(args.strategies.split(","))
    out = Path(args.out or f"benchmarks/results/regression_al_{args.family}.json")
    report = {"config": vars(args), "datasets": {}}
    tally = {s: [0, 0, 0] for s in strategies if s != "random"}
    for name in args.datasets.split(","):
        table = load_dataset(name)
        config = ExperimentConfig(
            strategies=strategies,
            ensemble=EnsembleConfig(family=args.family, n_members=args.members),
            runs=args.runs,
            initial=args.initial,
            budget=args.budget,
            cycles=args.cycles,
            max_rows=args.max_rows,
            task=name,
        )
        t0 = time.perf_counter()
        rmse, nll = run_experiment(table, config, Path(args.work) / args.family / name)
        seconds = time.perf_counter() - t0
        s_rmse, s_nll = summarize(rmse, "egl"), summarize(nll, "egl")
        rows = {}
        print(
            f"\n## {name} ({len(table)} rows, {table.x.shape[1]} features, target "
            f"{table.target_name}; n_labelled {rmse['n_labelled'][0]}→{rmse['n_labelled'][-1]}"
            f"; {args.runs} runs; {seconds:.0f} s)"
        )
        print(
            f"{'strategy':22s} {'AUC RMSE':>20s} {'p vs egl':>8s} {'p vs rand':>9s} "
            f"{'final RMSE':>20s} {'p vs egl':>8s} {'AUC NLL':>16s}"
        )
        for s in strategies:
            p_rand = _vs(rmse, s, "random") if s != "random" else float("nan")
            p_worse = _vs(rmse, "random", s) if s != "random" else float("nan")
            if s != "random":
                tally[s][0 if p_rand < 0.1 else 2 if p_worse < 0.1 else 1] += 1
            rows[s] = {
                "auc_rmse": [s_rmse.auc_mean[s], s_rmse.auc_std[s]],
                "auc_p_vs_egl": s_rmse.auc_pvalue[s],
                "auc_p_better_than_random": p_rand,
                "auc_p_worse_than_random": p_worse,
                "final_rmse": [s_rmse.mean[s][-1], s_rmse.std[s][-1]],
                "final_p_vs_egl": s_rmse.pvalue[s][-1],
                "auc_nll": [s_nll.auc_mean[s], s_nll.auc_std[s]],
            }
            r = rows[s]
            print(
                f"{s:22s} {r['auc_rmse'][0]:11.4g} ± {r['auc_rmse'][1]:<6.2g} "
                f"{r['auc_p_vs_egl']:8.3f} {p_rand:9.3f} {r['final_rmse'][0]:11.4g} ± "
                f"{r['final_rmse'][1]:<6.2g} {r['final_p_vs_egl']:8.3f} "
                f"{r['auc_nll'][0]:9.4g} ± {r['auc_nll'][1]:<4.2g}"
            )
        report["datasets"][name] = {
            "rows": len(table),
            "features": table.x.shape[1],
            "seconds": seconds,
            "strategies": rows,
        }
    report["vs_random_auc"] = {
        s: dict(zip(("win", "tie", "loss"), v, strict=True)) for s, v in tally.items()
    }
    print("\n## AUC of RMSE against random over data sets (one-tailed paired t-test, p < 0.1)")
    for s, (w, t, l) in tally.items():
        print(f"{s:22s} win {w}  tie {t}  loss {l}")
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out, report)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
