"""Table 1 on rendered LSP → LSPET: the paper's protocol, scaled to this machine.

Base model on LSP's first poses (``--n-base``, rendered in the "lsp" look) and ``--initial``
random pool images, test on LSP's last 1000, pool = LSPET's poses rendered in the "lspet" look;
every strategy; several runs × cycles. The defaults put it where labels still move the model, as
the quick preset (400 → 850 labelled; each cycle fine-tuned 3 epochs at a peak lr of 1.2e-2);
the figures in benchmarks/results/README.md before issue 27 were measured with ``--n-base 0
--initial 0 --cycles 4 --budget 100 --base-epochs 40 --base-lr 2e-3 --cycle-epochs 6
--cycle-lr 1e-3`` (1000 → 1400, where no strategy moved the model much).
Prints the Table 1 analogue and writes ``OUT/results.json`` plus ``OUT/benchmark.json`` (the
wall time and the settings). Resumable: rerun the same command to continue.

    python benchmarks/pose_al.py --out runs/pose_al                  # CPU-sized defaults
    python benchmarks/pose_al.py --no-common-random-numbers --out runs/pose_al_nocrn
    torchrun --standalone --nproc-per-node 2 benchmarks/pose_al.py --threads 1 --out runs/pose_al
    python benchmarks/pose_al.py --preset paper --device cuda --out runs/pose_al_gpu
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from rich.console import Console

from eglpp.cli.run import finish_report, log_lines
from eglpp.distributed import launch_env
from eglpp.experiment.config import config_from_dict, preset
from eglpp.experiment.ranks import run_ranks
from eglpp.io import atomic_write_json


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/pose_al"))
    ap.add_argument(
        "--poses",
        type=Path,
        default=Path("../shared/data"),
        help="folder with lsp/joints.mat and lspet/joints.mat",
    )
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--cycles", type=int, default=3)
    ap.add_argument("--budget", type=int, default=150)
    ap.add_argument("--n-base", type=int, default=300, help="LSP base poses (0: all 1000)")
    ap.add_argument("--initial", type=int, default=100, help="random pool images labelled at start")
    ap.add_argument("--n-pool", type=int, default=1000, help="LSPET poses in the pool (0: all)")
    ap.add_argument("--n-test", type=int, default=500)
    ap.add_argument("--strategies", default="random,coreset,multipeak,learning-loss,egl++")
    ap.add_argument("--base-epochs", type=int, default=30, help="epochs of each run's base model")
    ap.add_argument("--cycle-epochs", type=int, default=3, help="fine-tuning epochs per cycle")
    ap.add_argument("--cycle-lr", type=float, default=1.2e-2, help="fine-tuning peak lr (Adam)")
    ap.add_argument(
        "--base-lr", type=float, default=2.4e-2, help="the base models' peak learning rate (Adam)"
    )
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--device", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--common-random-numbers",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the same training randomness for every strategy of a (run, cycle) (the default)",
    )
    args = ap.parse_args()
    if not (args.poses / "lsp" / "joints.mat").is_file():
        raise SystemExit(f"{args.poses}: no lsp/joints.mat here (pass --poses)")
    overrides = {
        "dataset": "lsp-lspet-rendered",
        "poses": str(args.poses),
        "runs": args.runs,
        "cycles": args.cycles,
        "budget": args.budget,
        "initial": args.initial,
        "n_base": args.n_base,  # a cap on LSP's train poses (the base set), 0: all
        "n_pool": args.n_pool,
        "n_test": args.n_test,
        "strategies": args.strategies,
        "seed": args.seed,
        "common_random_numbers": args.common_random_numbers,
        "base_train": {"epochs": args.base_epochs, "lr": args.base_lr},
        "cycle_train": {"epochs": args.cycle_epochs, "lr": args.cycle_lr},
    }
    if args.device:
        overrides["device"] = args.device
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    cfg = config_from_dict(overrides, base=preset(args.preset), where="pose_al flags")
    console = Console(log_path=False)
    log = log_lines(console)
    start = time.perf_counter()
    results = run_ranks(cfg, args.out, log=log)  # under torchrun: this rank's tasks
    if results is None:  # not rank 0
        return
    seconds = time.perf_counter() - start
    finish_report(results, args.out, console)
    atomic_write_json(
        args.out / "benchmark.json",
        {
            "wall_seconds_this_invocation": seconds,
            "preset": args.preset,
            "ranks": launch_env()[1],
            "threads": torch.get_num_threads(),
            "settings": {k: v for k, v in overrides.items()},
            "n_labelled": results["n_labelled"],
        },
    )
    console.print(json.dumps({"wall_seconds_this_invocation": round(seconds, 1)}))


if __name__ == "__main__":
    main()
