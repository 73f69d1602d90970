"""Which torch thread setup is fast on a small machine, idle and with one competing busy process.

For each candidate the measurement runs in a fresh Python process (OpenMP reads its environment
when torch loads), timing two steps of the ``quick`` preset:

- ``train``: one training step of its 2-stack 32-channel hourglass on a batch of 16 64-px images
  (forward, heatmap loss, backward, Adam step);
- ``egl++``: exact EGL++ gradient norms of a scoring batch (8 images × K = 10 neighbour labels,
  ``eglpp.gradnorm.exact.per_example_gradnorms``).

"busy" starts one process that spins on one core (a Python loop, as another user's job would)
for the duration of the measurement. Each cell is the median of ``--repeats`` timed calls after
``--warmup`` untimed ones; the whole script is bounded by ``--budget`` seconds per cell.

    python benchmarks/threads.py --out benchmarks/results/threads.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

#: name -> environment overrides (None: leave unset) and torch.set_num_threads (None: default)
CANDIDATES = {
    "torch default": ({}, None),
    "OMP_WAIT_POLICY=PASSIVE": ({"OMP_WAIT_POLICY": "PASSIVE"}, None),
    "1 thread": ({}, 1),
    "1 thread + PASSIVE": ({"OMP_WAIT_POLICY": "PASSIVE"}, 1),
}

CHILD = r"""
import json, statistics, sys, time
import torch
threads = json.loads(sys.argv[1]); warmup, repeats, budget = map(float, sys.argv[2:5])
if threads:
    torch.set_num_threads(int(threads))
from eglpp.experiment.config import preset
from eglpp.gradnorm.exact import per_example_gradnorms
from eglpp.pose.heatmaps import heatmap_loss, heatmap_loss_per_example
from eglpp.pose.hourglass import StackedHourglass
cfg = preset("quick")
g = torch.Generator().manual_seed(0)
model = StackedHourglass(cfg.model).reset_parameters(g)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
S, h, J = cfg.input_size, cfg.input_size // 4, cfg.model.n_joints
x = torch.rand(16, 3, S, S, generator=g)
y = torch.rand(16, J, h, h, generator=g)
w = torch.ones(16, J)
def train():
    model.train()
    loss = heatmap_loss_per_example(model(x).heatmaps, y, w).mean()
    opt.zero_grad(); loss.backward(); opt.step()
K = cfg.strategy.egl_pp.k
xs, ys, ws = x[:8], torch.rand(8, K, J, h, h, generator=g), torch.ones(8, K, J)
def score():
    per_example_gradnorms(model, xs, ys, ws, loss_fn=heatmap_loss)
out = {"threads": torch.get_num_threads()}
for name, fn in (("train", train), ("egl++", score)):
    start = time.perf_counter()
    for _ in range(int(warmup)):
        fn()
    times = []
    while len(times) < repeats and time.perf_counter() - start < budget:
        t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
    out[name] = statistics.median(times) if times else None
    out[name + "_n"] = len(times)
print(json.dumps(out))
"""

SPIN = "import sys, time\nend = time.time() + float(sys.argv[1])\nwhile time.time() < end: pass"


def measure(env_overrides: dict, threads, args, busy: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "MKL_"))}
    env.update(env_overrides)
    spinner = None
    if busy:
        spinner = subprocess.Popen([sys.executable, "-c", SPIN, str(3 * args.budget + 60)])
        time.sleep(0.5)
    load = os.getloadavg()[0]
    try:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, json.dumps(threads), str(args.warmup),
             str(args.repeats), str(args.budget)],
            env=env, capture_output=True, text=True, timeout=3 * args.budget + 120, check=True,
        )  # fmt: skip
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "load_before": load}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--budget", type=float, default=60.0, help="seconds per cell at most")
    ap.add_argument("--candidates", default=",".join(CANDIDATES), help="comma-separated names")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/threads.json"))
    args = ap.parse_args()
    names = [n.strip() for n in args.candidates.split(",") if n.strip()]
    rows = []
    for name in names:
        env, threads = CANDIDATES[name]
        for busy in (False, True):
            r = measure(env, threads, args, busy)
            rows.append({"candidate": name, "busy": busy, **r})
            print(
                f"{name:26s} {'busy' if busy else 'idle'}  threads {r['threads']}  "
                f"train {r['train']:.3f} s/step  egl++ {r['egl++']:.3f} s/batch  "
                f"(load before {r['load_before']:.2f})",
                flush=True,
            )
    print("\n| candidate | threads | train idle s | train busy s | EGL++ idle s | EGL++ busy s |")
    print("|---|---|---|---|---|---|")
    for name in names:
        idle, busy = (next(r for r in rows if r["candidate"] == name and r["busy"] is b)
                      for b in (False, True))  # fmt: skip
        print(f"| {name} | {idle['threads']} | {idle['train']:.3f} | {busy['train']:.3f} | "
              f"{idle['egl++']:.3f} | {busy['egl++']:.3f} |")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"cpus": os.cpu_count(), "python": sys.version.split()[0], "argv": sys.argv[1:]}
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
