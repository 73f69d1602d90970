"""How sharp a run's paired comparisons are: per cycle, the paired differences reference − other
(mean, std over runs, the smallest difference detectable at p < 0.1) and each strategy's
cycle-1 change from the base model (the "dip"), for one or more results.json files.

Compare two experiments that differ in one setting (common random numbers on/off, a
fine-tuning recipe) by passing both; nothing is re-run, only read.

    python benchmarks/paired_noise.py before=benchmarks/results/pose_al_cpu_results.json \\
        after=runs/pose_al/results.json --other random --out benchmarks/results/paired_noise.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from eglpp.io import read_json
from eglpp.stats import detectable_difference, validate_results


def summarise(results: dict, reference: str, other: str) -> dict:
    """Paired differences reference − other per cycle (PCK points) and every strategy's dip."""
    scores = {k: 100 * np.asarray(v, dtype=float) for k, v in results["scores"].items()}
    for name in (reference, other):
        if name not in scores:
            raise SystemExit(f"strategy {name!r} not in the results (has {', '.join(scores)})")
    runs = min(len(scores[reference]), len(scores[other]))
    diff = scores[reference][:runs] - scores[other][:runs]  # (runs, cycles + 1)
    cycles = list(range(1, diff.shape[1]))
    return {
        "runs": runs,
        "n_labelled": results["n_labelled"],
        "pair": f"{reference} - {other}",
        "diff_mean": [float(diff[:, c].mean()) for c in cycles],
        "diff_std": [float(diff[:, c].std(ddof=1)) for c in cycles],
        "detectable_p0.1": [float(detectable_difference(diff[:, c], 0.1)) for c in cycles],
        "dip_cycle1": {k: _spread(v[:, 1] - v[:, 0]) for k, v in scores.items()},
    }


def _spread(x: np.ndarray) -> dict:
    return {"mean": float(x.mean()), "std": float(x.std(ddof=1))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="+", help="NAME=PATH of a results.json (or its run folder)")
    ap.add_argument("--reference", default="egl++")
    ap.add_argument("--other", default="random")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/paired_noise.json"))
    args = ap.parse_args()
    out = {}
    for item in args.results:
        name, _, path = item.partition("=")
        path = Path(path)
        path = path / "results.json" if path.is_dir() else path
        results = validate_results(read_json(path), str(path))
        out[name] = summarise(results, args.reference, args.other)
    for name, s in out.items():
        print(f"\n{name}: {s['pair']}, {s['runs']} runs, labelled {s['n_labelled']}")
        print("| cycle | mean diff | std of diffs | detectable at p<0.1 |\n|---|---|---|---|")
        rows = zip(s["diff_mean"], s["diff_std"], s["detectable_p0.1"], strict=True)
        for c, (m, sd, det) in enumerate(rows, 1):
            print(f"| {c} | {m:+.2f} | {sd:.2f} | {det:.2f} |")
        dips = ", ".join(
            f"{k} {d['mean']:+.2f} ± {d['std']:.2f}" for k, d in s["dip_cycle1"].items()
        )
        print(f"cycle-1 change from the base model: {dips}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
