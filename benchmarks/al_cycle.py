"""One active-learning experiment at a chosen size, timed phase by phase (issue 5's GPU check).

Runs ``eglpp.experiment.ranks.run_ranks`` (the loop of ``eglpp run``; under ``torchrun``
every rank runs its share of the tasks) on rendered people, recording the time of every
log line: data rendering, base training, each strategy's scoring, retraining and evaluation.
From these phases the full ``paper`` experiment (5 strategies × 5 cycles × 5 runs) can be
extrapolated. The run directory (checkpoints) goes to ``--run-dir``, the timings to ``--out``.

Usage::

    python benchmarks/al_cycle.py --device cuda --out al_cycle_gpu.json       # paper-size model
    python benchmarks/al_cycle.py --preset tiny --device cpu --out /tmp/al.json
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time

import torch

from eglpp.experiment.config import config_from_dict, config_to_dict, preset
from eglpp.experiment.ranks import run_ranks
from eglpp.io import atomic_write_json


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--strategies", default="egl++,random")
    ap.add_argument("--estimator", default="exact", help="EGL++: exact | probes")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--cycles", type=int, default=1)
    ap.add_argument("--n-pool", type=int, default=1500)
    ap.add_argument("--initial", type=int, default=500)
    ap.add_argument("--budget", type=int, default=250)
    ap.add_argument("--n-test", type=int, default=300)
    ap.add_argument("--base-epochs", type=int, default=3)
    ap.add_argument("--cycle-epochs", type=int, default=2)
    ap.add_argument("--run-dir", default=None, help="default: a temporary folder")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
    overrides = {
        "strategies": args.strategies,
        "runs": args.runs,
        "cycles": args.cycles,
        "n_pool": args.n_pool,
        "initial": args.initial,
        "budget": args.budget,
        "n_test": args.n_test,
        "device": args.device,
        "base_train": {"epochs": args.base_epochs},
        "cycle_train": {"epochs": args.cycle_epochs},
        "strategy": {"egl++": {"estimator": args.estimator}},
    }
    cfg = config_from_dict(overrides, base=preset(args.preset), where="benchmarks/al_cycle.py")
    t0 = time.perf_counter()
    lines: list[tuple[float, str]] = []

    def log(msg: str) -> None:
        lines.append((time.perf_counter() - t0, str(msg)))
        print(f"[{lines[-1][0]:8.1f} s] {msg}", flush=True)

    run_dir = args.run_dir or tempfile.mkdtemp(prefix="al_cycle_")
    results = run_ranks(cfg, run_dir, log=log)
    if results is None:  # a torchrun worker
        return
    wall = time.perf_counter() - t0
    print(f"wall {wall:.1f} s; scores {results['scores']}")
    if args.out:
        atomic_write_json(
            args.out,
            {
                "device": torch.cuda.get_device_name()
                if args.device.startswith("cuda")
                else (platform.processor() or platform.machine()),
                "wall_seconds": wall,
                "log": lines,
                "scores": results["scores"],
                "n_labelled": results["n_labelled"],
                "config": config_to_dict(cfg),
            },
        )
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
