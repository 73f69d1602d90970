"""A device's EGL++ selections against a CPU run's, from the same models (issue 24).

Training on a GPU (bf16 autocast, other kernels) gives other models than on a CPU, so whole
runs are not compared; the scoring is. ``eglpp run --preset tiny --strategies egl++`` runs on
the CPU; then each of its cycles is scored again on ``--device`` from the very checkpoint and
labelled set that scored it on the CPU, with the cycle's own generator, and compared with the
saved selection: Spearman correlation of the scores, largest relative difference, and overlap
of the selected images. **Tolerance**: Spearman >= 0.999 and at least 90 % of the selected
images in common (ties and float32 reduction order may swap images at the boundary).

    python benchmarks/gpu_match.py --device cuda --out match.json
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from eglpp.experiment.config import config_from_dict, preset
from eglpp.experiment.data import build_data
from eglpp.experiment.pool import cycle_pool_inputs
from eglpp.experiment.rundir import RunPaths, load_selection
from eglpp.io import atomic_write_json, load_npy, read_json
from eglpp.pose.checkpoint import load_model
from eglpp.seeds import stable_seed

MIN_SPEARMAN, MIN_OVERLAP, STRATEGY = 0.999, 0.9, "egl++"


def rescore(run_dir: Path, device: str) -> list[dict]:
    """Each cycle of ``run_dir``'s egl++ chains scored again on ``device``, compared."""
    paths = RunPaths(run_dir)
    cpu = config_from_dict(read_json(paths.config), base=preset("tiny"))
    cfg = replace(cpu, device=device)
    data = build_data(cfg, device=device)
    strategy = cfg.strategy.get(STRATEGY)
    rows = []
    for r in range(cfg.runs):
        labelled = load_npy(paths.labelled(r, STRATEGY))
        for c in range(1, cfg.cycles + 1):
            cdir = paths.cycle(r, STRATEGY, c)
            before = np.where((labelled >= 0) & (labelled < c), labelled, -1)
            model = load_model(RunPaths.scoring_model(cdir)).to(device)
            inputs = cycle_pool_inputs(strategy.needs, model, None, data, before, cfg,
                                       progress=False)  # fmt: skip
            rng = np.random.default_rng([cfg.seed, r, stable_seed(STRATEGY), c])
            positions, scores, _ = strategy.select_explained(inputs, cfg.budget, rng)
            saved = load_selection(RunPaths.selection(cdir))
            chosen = set(np.flatnonzero(before < 0)[positions].tolist())
            overlap = len(chosen & set(saved["query_indices"].tolist())) / len(chosen)
            relative = np.abs(scores - saved["scores"]) / np.abs(saved["scores"]).max()
            rows.append({"run": r, "cycle": c, "spearman": float(spearmanr(scores,
                         saved["scores"]).statistic), "max_relative_difference":
                         float(relative.max()), "selected_overlap": overlap})  # fmt: skip
    return rows


#: ``small``: the tiny preset smaller still (the CPU dry run of gpu_checks.sh).
SMALL = ["--initial", "16", "--budget", "8", "--set", "n_pool=48", "--set", "n_test=16",
         "--set", "base_train.epochs=1", "--set", "cycle_train.epochs=1"]  # fmt: skip


def match(device: str, folder: Path, small: bool = False) -> dict:
    """The tiny preset's egl++ on the CPU, then :func:`rescore` on ``device``."""
    run_dir = folder / "cpu"
    argv = [sys.executable, "-m", "eglpp", "run", "--preset", "tiny", "--strategies", STRATEGY,
            "--device", "cpu", "--jobs", "1", "--threads", "1", "--runs", "1",
            "--set", "keep_checkpoints=all", "--out", str(run_dir)]  # fmt: skip
    argv += SMALL if small else []
    done = subprocess.run(argv, capture_output=True, text=True, )
    if done.returncode != 0:
        return {"exit": done.returncode, "tail": done.stdout[-2000:] + done.stderr[-2000:]}
    rows = rescore(run_dir, device)
    ok = all(x["spearman"] >= MIN_SPEARMAN and x["selected_overlap"] >= MIN_OVERLAP for x in rows)
    return {"exit": 0, "device": device, "tolerance": {"spearman": MIN_SPEARMAN,
            "selected_overlap": MIN_OVERLAP}, "cycles": rows, "within_tolerance": ok}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out", required=True)
    ap.add_argument("--small", action="store_true", help="smaller than the tiny preset")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = match(args.device, Path(tmp), args.small)
    atomic_write_json(args.out, result)
    print(result)


if __name__ == "__main__":
    main()
