"""Fit a pose model on datasets that follow the pose dataset contract.

Items are dicts ``{"image" (3, S, S), "joints" (J, 2) input px, "visible" (J,), "index",
"head_size"}``; datasets carry ``skeleton`` and may have ``set_epoch(epoch)`` (augmentation
deterministic from seed, epoch and index). Training minimises the heatmap loss (MSE over all
stacks, :func:`eglpp.pose.heatmaps.heatmap_loss`) plus, optionally, the loss of an auxiliary
module trained jointly (the Learning Loss head):

- training: ``aux(features, per_example_loss) -> scalar``, ``features`` the last hourglass's
  multi-scale tensors, ``per_example_loss`` (B,) the heatmap loss of each example (not
  detached: the module detaches what it wants); ``aux.set_epoch(epoch)`` is called if it exists;
- prediction: ``aux.predict(features) -> (B,)`` if the module has ``predict``, else
  ``aux(features, None) -> (B,)`` (see :func:`eglpp.pose.inference.predict`).

On CUDA, mixed precision (bfloat16 where supported, else float16 with loss scaling) and
channels_last are used when ``TrainConfig.amp`` / ``channels_last`` are on; on CPU they are never
used. Shuffling comes from a ``torch.Generator`` seeded with ``seed``, so a CPU run is
reproducible from (model weights, data, seed); CUDA kernels may add nondeterminism. Validation
uses :func:`eglpp.pose.inference.evaluate`.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TimeElapsedColumn
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler, Sampler, Subset

from eglpp.pose.checkpoint import save_checkpoint
from eglpp.pose.heatmaps import gaussian_heatmaps, heatmap_loss_per_example, input_to_heatmap
from eglpp.pose.hourglass import STRIDE, StackedHourglass
from eglpp.pose.inference import amp_dtype, autocast, base_dataset, dataset_skeleton, evaluate

__all__ = ["TrainConfig", "FitResult", "fit", "KeyedShuffle"]


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    batch_size: int = 16  # Newell: 6 (8 stacks); the 2-stack model fits 16+ on a GPU
    lr: float = 2.5e-4  # Newell's RMSprop learning rate
    optimizer: str = "rmsprop"  # "rmsprop" (Newell) | "adam"
    schedule: str = "constant"  # "constant" | "step" (× lr_gamma at lr_steps) | "cosine"
    lr_steps: tuple[int, ...] = ()  # epochs at which "step" multiplies the lr by lr_gamma
    lr_gamma: float = 0.1
    warmup_steps: int = 0  # the lr rises linearly over the first optimizer steps (0: none):
    # fine-tuning with a fresh optimizer then does not jolt a converged model
    weight_decay: float = 0.0
    sigma: float = 1.0  # target std in heatmap px: Newell 1 at 64×64, the paper's code 1.75
    grad_clip: float | None = None  # max gradient norm, None: no clipping
    val_fraction: float = 0.0  # split off train_set when no val_set is given
    val_every: int = 1  # epochs between validations
    metric: str = "pck"  # validation metric: "pck" (torso) | "pckh" (head) | "pckb" (box)
    alpha: float = 0.2  # PCK@0.2 (LSP); use 0.5 for PCKh
    flip_test: bool = False  # average with the mirrored image's heatmaps in validation
    num_workers: int = 0
    amp: bool = True  # mixed precision, CUDA only
    channels_last: bool = True  # memory format, CUDA only

    def __post_init__(self) -> None:
        checks = {
            "epochs": self.epochs >= 1,
            "batch_size": self.batch_size >= 1,
            "lr": self.lr > 0,
            "optimizer": self.optimizer in ("rmsprop", "adam"),
            "schedule": self.schedule in ("constant", "step", "cosine"),
            "sigma": self.sigma > 0,
            "val_fraction": 0 <= self.val_fraction < 1,
            "val_every": self.val_every >= 1,
            "metric": self.metric in ("pck", "pckh", "pckb"),
            "alpha": self.alpha > 0,
            "num_workers": self.num_workers >= 0,
            "grad_clip": self.grad_clip is None or self.grad_clip > 0,
            "warmup_steps": self.warmup_steps >= 0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            values = ", ".join(f"{n}={getattr(self, n)!r}" for n in bad)
            raise ValueError(f"invalid TrainConfig: {values} (see TrainConfig for allowed values)")


@dataclass
class FitResult:
    history: list[dict] = field(default_factory=list)  # one dict per epoch
    best_epoch: int | None = None  # epoch whose weights the model holds at the end
    best_metric: float | None = None  # its validation metric (None without validation)
    seconds: float = 0.0  # wall time of the whole fit
    n_train: int = 0
    n_val: int = 0


def _split(dataset: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset | None]:
    if fraction == 0:
        return dataset, None
    n = len(dataset)
    n_val = max(1, round(fraction * n))
    if n_val >= n:
        raise ValueError(f"val_fraction={fraction} leaves no training images out of {n}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 1)).tolist()
    return Subset(dataset, perm[n_val:]), Subset(dataset, perm[:n_val])


def _train_val(
    train_set: Dataset, val_set: Dataset | None, config: TrainConfig, seed: int, keys
) -> tuple[Dataset, Dataset | None, np.ndarray | None]:
    """Without ``val_set``, split ``config.val_fraction`` off ``train_set`` (keys follow)."""
    if val_set is not None:
        return train_set, val_set, keys
    kept, val_set = _split(train_set, config.val_fraction, seed)
    if keys is not None and kept is not train_set:  # the keys of the examples kept
        keys = np.asarray(keys)[np.asarray(kept.indices)]
    return kept, val_set, keys


def _optimizer(params: list[nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.RMSprop(params, lr=config.lr, weight_decay=config.weight_decay)


def _scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig):
    if config.schedule == "step":
        return torch.optim.lr_scheduler.MultiStepLR(
            optimizer, list(config.lr_steps), config.lr_gamma
        )
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)


def _progress(enabled: bool):

    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=not enabled,
        transient=True,
    )


def _state(module: nn.Module | None) -> dict | None:
    return None if module is None else copy.deepcopy(module.state_dict())


def fit(
    model: StackedHourglass,
    train_set: Dataset,
    config: TrainConfig,
    *,
    val_set: Dataset | None = None,
    seed: int,
    device: str | torch.device = "cpu",
    aux: nn.Module | None = None,
    progress: bool = True,
    checkpoint_path: str | Path | None = None,
    log: Callable[[str], None] | None = None,
    keys: np.ndarray | None = None,
) -> FitResult:
    """Train ``model`` (and ``aux``) in place; the model ends with its best validation weights.

    Parameters
    ----------
    model : StackedHourglass
        Trained in place, moved to ``device``.
    train_set, val_set : Dataset
        Pose datasets. Without ``val_set``, ``config.val_fraction`` of ``train_set`` is split off
        (a seeded permutation) for validation. With validation, the weights of the epoch with
        the best ``config.metric`` are kept (restored at the end and saved to
        ``checkpoint_path``); without it, the last epoch's.
    seed : int
        Seeds the shuffling generator (and the validation split).
    aux : nn.Module, optional
        Trained jointly, see the module docstring.
    checkpoint_path : path, optional
        Where the kept weights are written (:func:`save_checkpoint`).
    log : callable, optional
        Receives one line per epoch (loss, validation metric, seconds), e.g. ``print``.
    keys : (N,) int array, optional
        An identity per example (e.g. pool indices): each epoch's order is then
        :class:`KeyedShuffle`'s, the same for the examples two training sets share (common
        random numbers for paired comparisons). Without keys, a seeded permutation.
    """
    device = torch.device(device)
    if len(train_set) == 0:
        raise ValueError("fit: train_set is empty")
    train_set, val_set, keys = _train_val(train_set, val_set, config, seed, keys)
    dataset_skeleton(train_set)  # fail early on a dataset without one
    _to_device(model, aux, config, device)
    params = list(model.parameters()) + ([] if aux is None else list(aux.parameters()))
    optimizer = _optimizer(params, config)
    scheduler = _scheduler(optimizer, config)
    step = _Step(model, aux, config, optimizer, device)
    loader = _loader(train_set, config, seed, device, keys)
    result = FitResult(n_train=len(train_set), n_val=0 if val_set is None else len(val_set))
    best, inputs = None, fed_inputs(train_set)  # best epoch's states; what the model is fed
    start = time.perf_counter()
    with _progress(progress) as bar:
        task = bar.add_task("training", total=config.epochs * len(loader))
        for epoch in range(config.epochs):
            t0 = time.perf_counter()
            for obj in (base_dataset(train_set), aux, loader.sampler):
                if hasattr(obj, "set_epoch"):
                    obj.set_epoch(epoch)
            record = _train_epoch(step, loader, epoch, config, device, bar, task)
            record["lr"] = optimizer.param_groups[0]["lr"]
            scheduler.step()
            if _validation_due(val_set, epoch, config):
                if _record_validation(model, val_set, config, device, epoch, record, result):
                    best = (_state(model), _state(aux))
                    if checkpoint_path is not None:
                        save_checkpoint(checkpoint_path, model, aux=aux, extra=record | inputs)
            record["seconds"] = time.perf_counter() - t0
            result.history.append(record)
            if log is not None:
                log(_format(record))
    _keep(model, aux, best, result, config, checkpoint_path, inputs)
    result.seconds = time.perf_counter() - start
    return result


@contextmanager
def _warmup(optimizer: torch.optim.Optimizer, step: int, steps: int) -> Iterator[None]:
    """During the first ``steps`` optimizer steps, step with the schedule's lr times
    ``(step + 1) / steps``; the schedule's own lr is restored after (it never sees this)."""
    if step >= steps:
        yield
        return
    scheduled = [group["lr"] for group in optimizer.param_groups]
    for group, lr in zip(optimizer.param_groups, scheduled, strict=True):
        group["lr"] = lr * (step + 1) / steps
    try:
        yield
    finally:
        for group, lr in zip(optimizer.param_groups, scheduled, strict=True):
            group["lr"] = lr


class KeyedShuffle(Sampler[int]):
    """Positions in the order of a hash of (seed, epoch, key): the same keys in any training
    set come in the same relative order, so adding examples only inserts them.

    >>> order = list(KeyedShuffle(np.array([10, 11, 12, 13]), seed=0))
    >>> sub = list(KeyedShuffle(np.array([11, 13]), seed=0))
    >>> [k for k in (10 + i for i in order) if k in (11, 13)] == [11 + 2 * i for i in sub]
    True
    """

    def __init__(self, keys: np.ndarray, seed: int) -> None:
        self.keys = np.asarray(keys, dtype=np.int64)
        self.seed, self.epoch = int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.keys)

    def __iter__(self) -> Iterator[int]:
        with np.errstate(over="ignore"):  # 64-bit hashing wraps around on purpose
            state = np.uint64(self.seed) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(self.epoch)
            priority = _mix(_mix(state) ^ self.keys.astype(np.uint64))
        return iter(np.argsort(priority, kind="stable").tolist())


def _mix(x: np.ndarray | np.uint64) -> np.ndarray:
    """splitmix64's finaliser: a bijective scramble of 64-bit integers (wraps around)."""
    with np.errstate(over="ignore"):
        x = np.asarray(x, dtype=np.uint64)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _to_device(
    model: nn.Module, aux: nn.Module | None, config: TrainConfig, device: torch.device
) -> None:
    """Move the model (channels_last on CUDA when configured) and the aux module to device."""
    model.to(device)
    if device.type == "cuda" and config.channels_last:
        model.to(memory_format=torch.channels_last)
    if aux is not None:
        aux.to(device)


def _loader(
    train_set: Dataset,
    config: TrainConfig,
    seed: int,
    device: torch.device,
    keys: np.ndarray | None = None,
) -> DataLoader:
    """The shuffled training batches: a permutation seeded with ``seed``, or with ``keys`` the
    :class:`KeyedShuffle` of the examples' identities."""
    if keys is None:
        sampler = RandomSampler(train_set, generator=torch.Generator().manual_seed(seed))
    else:
        if len(keys) != len(train_set):
            raise ValueError(f"fit: {len(keys)} keys for {len(train_set)} training examples")
        sampler = KeyedShuffle(keys, seed)
    return DataLoader(
        train_set,
        batch_size=config.batch_size,
        sampler=sampler,
        num_workers=config.num_workers,
        pin_memory=device.type == "cuda",
        drop_last=len(train_set) > config.batch_size,  # no tiny last batch for batch norm
    )


def _train_epoch(
    step: _Step,
    loader: DataLoader,
    epoch: int,
    config: TrainConfig,
    device: torch.device,
    bar: Progress,
    task: TaskID,
) -> dict:
    """One pass over the loader (advancing ``task`` of ``bar`` by one a batch); the epoch's
    record ``{"epoch", "loss"}`` (mean over items)."""
    total, count = torch.zeros((), device=device), 0
    for batch in loader:
        total += step(batch) * len(batch["index"])
        count += len(batch["index"])
        bar.update(task, advance=1, description=f"epoch {epoch + 1}/{config.epochs}")
    return {"epoch": epoch, "loss": float(total) / count}


def _validation_due(val_set: Dataset | None, epoch: int, config: TrainConfig) -> bool:
    """Validate every ``val_every`` epochs and after the last one (with a validation set)."""
    last = epoch == config.epochs - 1
    return val_set is not None and ((epoch + 1) % config.val_every == 0 or last)


def _record_validation(
    model: nn.Module,
    val_set: Dataset,
    config: TrainConfig,
    device: torch.device,
    epoch: int,
    record: dict,
    result: FitResult,
) -> bool:
    """Validate, put the score in ``record``; True (and ``result``'s best updated) when it is
    the best so far."""
    score = _validate(model, val_set, config, device)
    record[f"val_{config.metric}"] = score
    if result.best_metric is None or score > result.best_metric:
        result.best_metric, result.best_epoch = score, epoch
        return True
    return False


def _keep(
    model: nn.Module,
    aux: nn.Module | None,
    best: tuple | None,
    result: FitResult,
    config: TrainConfig,
    checkpoint_path: str | Path | None,
    inputs: dict,
) -> None:
    """End with the best validation weights (saved already); without validation, keep and
    save the last epoch's."""
    if best is not None:
        model.load_state_dict(best[0])
        if aux is not None:
            aux.load_state_dict(best[1])
    else:
        result.best_epoch = config.epochs - 1
        if checkpoint_path is not None:
            save_checkpoint(checkpoint_path, model, aux=aux, extra=result.history[-1] | inputs)


def fed_inputs(dataset: Dataset) -> dict:
    """``{"input_size": S or [H, W], "normalize": {...}}`` of a pose dataset (what its items
    feed the network), the keys it lacks left out."""
    base = base_dataset(dataset)
    out = {}
    if isinstance(getattr(base, "input_size", None), (int, tuple, list)):
        size = base.input_size
        out["input_size"] = size if isinstance(size, int) else [int(v) for v in size]
    if getattr(base, "normalize", None) is not None:
        out["normalize"] = base.normalize.record()
    return out


def _format(record: dict) -> str:
    """One epoch's record as a log line: ``epoch 3, loss 0.0101, lr 0.001, val_pck 32.90 %``
    (validation scores in percent, as every table shows them; the record keeps the fraction)."""
    return ", ".join(
        f"{k} {100 * v:.2f} %" if k.startswith("val_") and isinstance(v, float)
        else f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
        for k, v in record.items()
    )  # fmt: skip


def _validate(model, val_set, config: TrainConfig, device: torch.device) -> float:
    """The validation metric's mean; NaN (nothing counted) becomes -inf, never the best."""
    scores = evaluate(
        model,
        val_set,
        metric=config.metric,
        alpha=config.alpha,
        batch_size=config.batch_size,
        device=device,
        flip_test=config.flip_test,
        amp=config.amp,
    )
    return scores["mean"] if math.isfinite(scores["mean"]) else -math.inf


class _Step:
    """One optimisation step on a batch (AMP and channels_last on CUDA); returns the loss."""

    def __init__(self, model, aux, config: TrainConfig, optimizer, device: torch.device):
        self.model, self.aux, self.config = model, aux, config
        self.optimizer, self.device = optimizer, device
        self.amp_dtype = amp_dtype(device, config.amp)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.channels_last = device.type == "cuda" and config.channels_last
        self.steps = 0

    def __call__(self, batch: dict) -> torch.Tensor:
        model, aux, config, device = self.model, self.aux, self.config, self.device
        model.train()
        if aux is not None:
            aux.train()
        images = batch["image"].to(device, non_blocking=True)  # (B, 3, S, S)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        joints = batch["joints"].to(device)  # (B, J, 2) input px
        visible = batch["visible"].to(device)  # (B, J)
        H, W = images.shape[-2] // STRIDE, images.shape[-1] // STRIDE
        target = gaussian_heatmaps(input_to_heatmap(joints, STRIDE), visible, (H, W), config.sigma)
        with autocast(device, self.amp_dtype):
            out = model(images, return_features=aux is not None)
            per_example = heatmap_loss_per_example(out.heatmaps, target, visible)  # (B,)
            loss = per_example.mean()
            total = loss if aux is None else loss + aux(out.features, per_example)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        if config.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            params = [p for group in self.optimizer.param_groups for p in group["params"]]
            nn.utils.clip_grad_norm_(params, config.grad_clip)
        with _warmup(self.optimizer, self.steps, config.warmup_steps):
            self.scaler.step(self.optimizer)
        self.scaler.update()
        self.steps += 1
        return loss.detach()
