"""Benchmark: images per second of the people renderer, per domain and size, on CPU or CUDA.

Times ``render_items`` (scene sampling in numpy, one generator per item, plus the batched torch
rasteriser, blur and noise) on batches of ``--batch`` items, best of ``--repeats``, and the
split between scene sampling and rasterising. Prints a table and writes JSON.

    python benchmarks/render_speed.py --sizes 64,256 --threads 2
    python benchmarks/render_speed.py --device cuda --batch 1024
"""

from __future__ import annotations

import argparse
import platform
import time
from functools import partial

import numpy as np
import torch

from eglpp.io import atomic_write_json
from eglpp.pose.datasets.synthetic import RenderConfig, render_scenes, sample_items


def _best_of(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="64,256")
    ap.add_argument("--domains", default="clean,lsp,lspet")
    ap.add_argument("--batch", type=int, default=256, help="items per batch (64 px)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="benchmarks/results/render_speed.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)  # a script, not the library: fixes the core count
    device = torch.device(args.device)
    rows = []
    print(f"device {device}, {args.threads} CPU threads (torch), best of {args.repeats}")
    print(f"{'domain':7s} {'size':>5s} {'batch':>6s} {'images/s':>10s} {'sample ms/img':>14s}")
    for domain in args.domains.split(","):
        for size in map(int, args.sizes.split(",")):
            config = RenderConfig(size=size, domain=domain)
            batch = (
                max(8, args.batch * 64 * 64 // (size * size))
                if device.type == "cpu"
                else args.batch
            )
            indices = np.arange(batch)
            sample = partial(sample_items, indices, config, 0)
            sample_s = _best_of(sample, args.repeats)
            scenes, _ = sample()
            render_scenes(scenes[:8], indices[:8], 0, size, device=device)  # warm-up
            render = partial(render_scenes, scenes, indices, 0, size, device=device)
            render_s = _best_of(render, args.repeats)
            per_s = batch / (sample_s + render_s)
            rows.append(
                dict(
                    domain=domain,
                    size=size,
                    batch=batch,
                    images_per_s=per_s,
                    sample_ms_per_image=1e3 * sample_s / batch,
                    render_ms_per_image=1e3 * render_s / batch,
                )  # fmt: skip
            )
            print(f"{domain:7s} {size:5d} {batch:6d} {per_s:10.1f} {1e3 * sample_s / batch:14.3f}")
    atomic_write_json(
        args.out,
        dict(
            benchmark="render_speed",
            device=str(device),
            device_name=torch.cuda.get_device_name()
            if device.type == "cuda"
            else platform.processor(),
            threads=args.threads,
            repeats=args.repeats,
            torch=torch.__version__,
            rows=rows,
        ),
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
