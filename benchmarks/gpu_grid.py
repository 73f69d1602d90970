"""All visible GPUs against one: the same small experiment on N ranks and on 1 (issue 24).

Runs ``benchmarks/al_cycle.py`` (the loop of ``eglpp run``; under torchrun every rank runs its
share of the tasks) once per rank count, each in a fresh run folder, at the sizes given after
``--``, and records for each: the wall time (launch included), and from the run folder the
training images/s and exact EGL++ pool images/s of one rank (each phase's images over its
seconds, summed over the steps), and the results' scores (the same for every rank count).

    python benchmarks/gpu_grid.py --device cuda --out grid.json -- --preset paper --runs 2 ...
    python benchmarks/gpu_grid.py --device cpu --ranks 1,2 --out /tmp/g.json -- --preset tiny

``--ranks`` defaults to ``1,N`` with N the visible GPUs (only ``1`` on one GPU or a CPU).
``--match`` adds ``benchmarks/gpu_match.py``'s check (the device's EGL++ selections against a
CPU run's, within its stated tolerance) to the same JSON file.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from gpu_match import match

from eglpp.experiment.rundir import RunPaths
from eglpp.io import atomic_write_json, read_json

HERE = Path(__file__).parent


def throughput(run_dir: Path) -> dict:
    """Images/s of one rank's training (epochs × labelled images over train seconds, base models
    and cycles) and of exact EGL++'s scoring (pool images over score seconds)."""
    config = read_json(RunPaths(run_dir).config)
    trained = train_s = scored = score_s = 0.0
    for kind, path in RunPaths(run_dir).step_metrics():
        metrics = read_json(path)
        seconds = metrics.get("seconds") or {}
        if kind == "base":
            images = config["initial"] * config["base_train"]["epochs"]  # + a base set, if any
        else:
            images = metrics["n_labelled"] * config["cycle_train"]["epochs"]
        trained, train_s = trained + images, train_s + seconds.get("train", 0.0)
        if kind == "egl++":
            with np.load(RunPaths.selection(path.parent)) as z:
                scored += len(z["unlabelled"])
            score_s += seconds.get("score", 0.0)
    return {
        "train_images_per_s": trained / train_s if train_s else None,
        "egl_pp_images_per_s": scored / score_s if score_s else None,
    }


def one(ranks: int, device: str, extra: list[str], folder: Path) -> dict:
    run_dir, out = folder / f"run-{ranks}", folder / f"al-{ranks}.json"
    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={ranks}", str(HERE / "al_cycle.py"), "--device", device,
            "--run-dir", str(run_dir), "--out", str(out), *extra]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        return {"ranks": ranks, "exit": done.returncode, "tail": done.stdout[-2000:] +
                done.stderr[-2000:]}  # fmt: skip
    return {"ranks": ranks, "exit": 0, "wall_seconds": wall, **throughput(run_dir),
            "scores": read_json(out)["scores"]}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--ranks", default=None, help="comma-separated rank counts (default 1,GPUs)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--match", action="store_true", help="also gpu_match.py's check")
    ap.add_argument("--match-small", action="store_true", help="gpu_match.py --small")
    ap.add_argument("extra", nargs="*", help="al_cycle.py's arguments (after --)")
    args = ap.parse_args()
    gpus = torch.cuda.device_count() if args.device.startswith("cuda") else 1
    counts = sorted({int(n) for n in args.ranks.split(",")} if args.ranks else {1, max(gpus, 1)})
    with tempfile.TemporaryDirectory() as tmp:
        rows = [one(n, args.device, args.extra, Path(tmp)) for n in counts]
        checked = match(args.device, Path(tmp), args.match_small) if args.match else None
    for row in rows:
        print(json.dumps({k: v for k, v in row.items() if k != "scores"}))
    finished = [r for r in rows if r["exit"] == 0]
    same = all(r["scores"] == finished[0]["scores"] for r in finished)
    summary = {"device": args.device, "gpus": gpus, "rows": rows, "same_scores": same}
    if len(finished) > 1:
        summary["speedup"] = finished[0]["wall_seconds"] / finished[-1]["wall_seconds"]
    if checked is not None:
        summary["match"] = checked
        print(f"selections of {args.device} vs cpu within tolerance: "
              f"{checked.get('within_tolerance')}")  # fmt: skip
    atomic_write_json(args.out, summary)
    print(f"wrote {args.out}: same scores for every rank count: {same}")


if __name__ == "__main__":
    main()
