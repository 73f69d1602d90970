"""Training and inference throughput (images/s) of the stacked hourglass.

Two loops on the same in-memory random dataset (so that image decoding is not measured):

- ``plain``: a straightforward fp32 loop (DataLoader → forward → heatmap loss → RMSprop step;
  ``torch.no_grad`` forward for inference), contiguous memory;
- ``project``: ``eglpp.pose.train.fit`` / ``eglpp.pose.inference.predict``, which on CUDA use
  mixed precision (bfloat16 where supported) and channels_last; on a CPU they are the plain loop
  plus the project's bookkeeping.

Each measurement runs ``--warmup`` untimed passes first; training reports the last of
``--epochs`` epochs. Sizes: ``cpu`` (2 stacks, 64 channels, 64 px) and, with ``--device cuda``,
also ``paper`` (2 stacks, 256 channels, 256 px).

On cores shared with other jobs, ``--threads 1`` is the stable choice: two OpenMP threads
competing with other processes ran 5-20× slower here.

Usage::

    python benchmarks/pose_train.py --threads 1 --out benchmarks/results/pose_train_cpu.json
    python benchmarks/pose_train.py --device cuda --out pose_train_cuda.json
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch
from torch.utils.data import DataLoader, Dataset

from eglpp.io import atomic_write_json
from eglpp.pose.heatmaps import gaussian_heatmaps, heatmap_loss, input_to_heatmap
from eglpp.pose.hourglass import HourglassConfig, StackedHourglass
from eglpp.pose.inference import predict
from eglpp.pose.skeleton import LSP
from eglpp.pose.train import TrainConfig, fit

SIZES = {
    "cpu": (HourglassConfig(n_stacks=2, channels=64, depth=4), 64),
    "paper": (HourglassConfig(n_stacks=2, channels=256, depth=4), 256),
}


class RandomPoses(Dataset):
    """``n`` random images with random joints, held in memory (dataset contract)."""

    def __init__(self, n: int, size: int, seed: int = 0):
        gen = torch.Generator().manual_seed(seed)
        self.skeleton, self.input_size = LSP, size
        self.images = torch.rand(n, 3, size, size, generator=gen)
        self.joints = torch.rand(n, 14, 2, generator=gen) * (size - 1)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        return {
            "image": self.images[i],
            "joints": self.joints[i],
            "visible": torch.ones(14, dtype=torch.bool),
            "index": torch.tensor(i),
            "head_size": torch.tensor(float("nan")),
        }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def plain_train(model, data, batch_size, epochs, device) -> float:
    """images/s of the last epoch of a plain fp32 training loop."""
    model.to(device).train()
    opt = torch.optim.RMSprop(model.parameters(), lr=2.5e-4)
    loader = DataLoader(data, batch_size=batch_size, shuffle=True, drop_last=True)
    for _ in range(epochs):
        _sync(device)
        t0, n = time.perf_counter(), 0
        for batch in loader:
            images = batch["image"].to(device)
            S = images.shape[-1] // 4
            joints = input_to_heatmap(batch["joints"].to(device), 4)
            target = gaussian_heatmaps(joints, batch["visible"].to(device), (S, S), 1.0)
            loss = heatmap_loss(model(images).heatmaps, target, batch["visible"].to(device))
            opt.zero_grad()
            loss.backward()
            opt.step()
            n += len(images)
        _sync(device)
    return n / (time.perf_counter() - t0)


@torch.no_grad()
def plain_predict(model, data, batch_size, device) -> float:
    model.to(device).eval()
    _sync(device)
    t0 = time.perf_counter()
    for batch in DataLoader(data, batch_size=batch_size):
        model(batch["image"].to(device)).heatmaps[:, -1].float().cpu()
    _sync(device)
    return len(data) / (time.perf_counter() - t0)


def project_train(model, data, batch_size, epochs, device) -> float:
    config = TrainConfig(epochs=epochs, batch_size=batch_size, optimizer="rmsprop")
    result = fit(model, data, config, seed=0, device=device, progress=False)
    last = result.history[-1]
    return (len(data) // batch_size) * batch_size / last["seconds"]


def project_predict(model, data, batch_size, device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    predict(model, data, batch_size=batch_size, device=device)
    _sync(device)
    return len(data) / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", nargs="*", default=None, help="cpu and/or paper")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--images", type=int, default=None, help="images per epoch")
    parser.add_argument("--epochs", type=int, default=2, help="training epochs (last timed)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--out", default="pose_train.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sizes = args.sizes or (["cpu", "paper"] if device.type == "cuda" else ["cpu"])
    n_images = args.images or (512 if device.type == "cuda" else 64)
    rows = []
    for name in sizes:
        config, size = SIZES[name]
        data = RandomPoses(n_images, size)
        for loop in ("plain", "project"):
            model = StackedHourglass(config).reset_parameters(torch.Generator().manual_seed(0))
            if loop == "plain":
                train = plain_train(model, data, args.batch_size, args.epochs, device)
                plain_predict(model, data, args.batch_size, device)  # warm-up
                infer = plain_predict(model, data, args.batch_size, device)
            else:
                train = project_train(model, data, args.batch_size, args.epochs, device)
                project_predict(model, data, args.batch_size, device)  # warm-up
                infer = project_predict(model, data, args.batch_size, device)
            rows.append(
                {
                    "size": name,
                    "stacks": config.n_stacks,
                    "channels": config.channels,
                    "input": size,
                    "loop": loop,
                    "train_images_per_s": train,
                    "predict_images_per_s": infer,
                }
            )
            r = rows[-1]
            print(
                f"{name:6s} {config.n_stacks}×{config.channels:<4d} {size:4d}px {loop:8s} "
                f"train {r['train_images_per_s']:9.1f} img/s   predict "
                f"{r['predict_images_per_s']:9.1f} img/s",
                flush=True,
            )
    env = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "load_average_1min": os.getloadavg()[0],
        "batch_size": args.batch_size,
        "images_per_epoch": n_images,
        "epochs": args.epochs,
    }
    atomic_write_json(args.out, {"environment": env, "rows": rows})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
