"""PCK of a preset's network against the number of labelled images: where labels move the model.

For each size ``n`` and seed, the model of the preset (default ``quick``) trains from scratch on
``n`` rendered people with the preset's base-training recipe at a fixed number of optimizer
steps (default: the steps the preset's base model takes, so a size costs the same at every
point), then is evaluated on the preset's test set. The labelled sets of one seed are nested
(the first ``n`` of one permutation of a pool rendered as the preset renders its pool), so a
seed's curve is the same data growing. The preset's active-learning window, its first labelled
count (base set + initial) to its last (+ cycles × budget), is drawn on the plot: the part of the
curve a strategy can move.

    python benchmarks/learning_curve.py --threads 1 --jobs 2 \
        --out benchmarks/results/learning_curve.json --plot benchmarks/results/learning_curve.png
    python benchmarks/learning_curve.py --sizes 100,200 --seeds 1 --steps 50   # a smoke run

Every finished point is written to ``--out`` at once; the same command again resumes (only the
missing points train), and more ``--seeds`` or ``--sizes`` add points to the same file.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path

import numpy as np

# the preset's own settings: `--set KEY=VALUE` as `eglpp run` merges them
from eglpp.cli.run import apply_settings
from eglpp.experiment.config import ExperimentConfig, config_from_dict, config_to_dict, preset


def base_steps(cfg: ExperimentConfig) -> int:
    """Optimizer steps of the preset's base model (its epochs over base set + initial)."""
    n = cfg.n_base + cfg.initial
    return cfg.base_train.epochs * math.ceil(n / cfg.base_train.batch_size)


def window(cfg: ExperimentConfig) -> tuple[int, int]:
    """(labelled before cycle 1, labelled after the last cycle) of the preset."""
    first = cfg.n_base + cfg.initial
    return first, first + cfg.cycles * cfg.budget


_DATA: dict = {}


def _setup(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def point(cfg_dict: dict, n: int, seed: int, steps: int) -> dict:
    """Train the preset's network on the first ``n`` of seed ``seed``'s permutation; PCK %."""
    import torch

    from eglpp.experiment.data import build_data
    from eglpp.pose.hourglass import StackedHourglass
    from eglpp.pose.inference import evaluate
    from eglpp.pose.train import fit
    from eglpp.seeds import stable_seed

    cfg = config_from_dict(cfg_dict, base=preset("quick")).resolved()
    key = json.dumps(cfg_dict, sort_keys=True)
    if key not in _DATA:  # one rendering per worker process
        _DATA.clear()
        _DATA[key] = build_data(cfg)
    data = _DATA[key]
    order = np.random.default_rng([cfg.seed, seed, 27]).permutation(len(data.pool))
    train_set = torch.utils.data.Subset(data.pool, np.sort(order[:n]).tolist())
    train_set.skeleton, train_set.input_size = data.skeleton, data.input_size
    per_epoch = math.ceil(n / cfg.base_train.batch_size)
    epochs = max(1, round(steps / per_epoch))
    model = StackedHourglass(cfg.model).reset_parameters(
        torch.Generator().manual_seed(stable_seed(cfg.seed, seed, "init"))
    )
    t0 = time.perf_counter()
    fit(model, train_set, replace(cfg.base_train, epochs=epochs),
        seed=stable_seed(cfg.seed, seed, "curve", n), progress=False)  # fmt: skip
    seconds = time.perf_counter() - t0
    metrics = evaluate(model, data.test, metric=cfg.metric, alpha=cfg.alpha)
    return {"n": n, "seed": seed, "pck": 100 * float(metrics["mean"]), "epochs": epochs,
            "steps": epochs * per_epoch, "train_seconds": seconds}  # fmt: skip


def _done_points(out: Path, steps: int, settings: list[str]) -> dict:
    """(n, seed) -> point of an earlier invocation with the same steps and settings."""
    if not out.is_file():
        return {}
    old = json.loads(out.read_text())
    if old.get("steps") != steps or old.get("settings", []) != settings:
        raise SystemExit(f"{out}: holds points of other settings (steps {old.get('steps')}, "
                         f"{old.get('settings')}); use another --out")  # fmt: skip
    return {(p["n"], p["seed"]): p for p in old["points"]}


def _save_points(out: Path, steps: int, settings: list[str], points: list[dict]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = {"steps": steps, "settings": settings, "summary": [], "points": points}
    if out.is_file():  # keep the finished summary's other fields until the end rewrites them
        partial = {**json.loads(out.read_text()), **partial}
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(partial, indent=1) + "\n")
    tmp.replace(out)


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["summary"]
    ns = [r["n"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    for s in sorted({p["seed"] for p in result["points"]}):
        pts = sorted((p["n"], p["pck"]) for p in result["points"] if p["seed"] == s)
        ax.plot(*zip(*pts, strict=True), color="0.75", lw=1, marker=".")
    ax.errorbar(ns, [r["mean"] for r in rows], yerr=[r["std"] or 0 for r in rows], color="C0",
                marker="o", capsize=3, label="mean ± std over seeds")  # fmt: skip
    lo, hi = result["window"]
    ax.axvspan(lo, hi, color="C1", alpha=0.2, label=f"{result['preset']} preset: {lo} → {hi}")
    ax.set_xscale("log", base=2)
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.set_xlabel("labelled images (log scale)")
    ax.set_ylabel(f"test {result['metric']} %")
    ax.set_title(f"{result['preset']} network, {result['steps']} steps per point")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                    help="override a preset setting, as eglpp run --set")  # fmt: skip
    ap.add_argument("--sizes", default="100,200,400,800,1600,3200")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=0, help="per point (0: the preset's base steps)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=1, help="points trained side by side")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/learning_curve.json"))
    ap.add_argument("--plot", type=Path, default=None, help="PNG (default: --out with .png)")
    ap.add_argument("--summarise-only", action="store_true",
                    help="train nothing: table and plot of the points --out holds")
    args = ap.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    cfg_dict = apply_settings(config_to_dict(preset(args.preset)), args.settings)
    cfg = config_from_dict(cfg_dict, base=preset(args.preset))
    steps = args.steps or base_steps(cfg)
    cfg_dict = {**cfg_dict, "n_pool": max(sizes), "n_base": 0}  # one pool, nested subsets
    cfg_dict["initial"], cfg_dict["cycles"], cfg_dict["budget"] = 1, 1, 1
    done = _done_points(args.out, steps, args.settings)  # a rerun resumes
    tasks = [(n, s) for s in range(args.seeds) for n in sizes if (n, s) not in done]
    if args.summarise_only:
        tasks = []
    start = time.perf_counter()
    print(f"{len(tasks)} points, {steps} steps each, {args.jobs} process(es) × "
          f"{args.threads} thread(s)", flush=True)  # fmt: skip
    with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn"), initializer=_setup,
                             initargs=(args.threads,)) as pool:  # fmt: skip
        futures = [pool.submit(point, cfg_dict, n, s, steps) for n, s in tasks]
        kept = dict(done)  # every point the file holds stays in it, shown or not
        for f in futures:
            p = f.result()
            kept[(p["n"], p["seed"])] = p
            _save_points(args.out, steps, args.settings, list(kept.values()))  # if interrupted
            print(f"n={p['n']:5d} seed={p['seed']} PCK {p['pck']:.2f} % "
                  f"({p['epochs']} epochs, {p['train_seconds']:.0f} s)", flush=True)  # fmt: skip
    points = [p for key, p in sorted(kept.items()) if key[0] in sizes and key[1] < args.seeds]
    summary = []
    for n in sizes:
        v = np.array([p["pck"] for p in points if p["n"] == n])
        if not len(v):
            continue
        summary.append({"n": n, "mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1
                        else None, "runs": v.tolist()})  # fmt: skip (None: one seed)
    result = {
        "preset": args.preset, "settings": args.settings, "metric": cfg.resolved().metric.upper()
        + f"@{cfg.resolved().alpha}", "steps": steps, "window": list(window(cfg)),
        "environment": {"cpu_count": os.cpu_count(), "threads": args.threads, "jobs": args.jobs,
                        "load_average_after": os.getloadavg(),
                        "wall_seconds": time.perf_counter() - start},
        "summary": summary, "points": [p for _, p in sorted(kept.items())],
    }  # fmt: skip
    print(f"\n| labelled | {result['metric']} % mean ± std | per seed |\n|---|---|---|")
    for r in summary:
        runs = ", ".join(f"{v:.1f}" for v in r["runs"])
        spread = "(one seed)" if r["std"] is None else f"± {r['std']:.2f}"
        print(f"| {r['n']} | {r['mean']:.2f} {spread} | {runs} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    plot(result, args.plot or args.out.with_suffix(".png"))
    print(f"wrote {args.out} and {args.plot or args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
