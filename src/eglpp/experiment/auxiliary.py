"""The Learning Loss head's own fit on a frozen pose network (before its first cycle)."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler

from eglpp.experiment.config import ExperimentConfig
from eglpp.pose.heatmaps import heatmap_loss_per_example, target_heatmaps
from eglpp.pose.hourglass import STRIDE, StackedHourglass

__all__ = ["fit_auxiliary"]


def fit_auxiliary(
    model: StackedHourglass,
    aux: torch.nn.Module,
    dataset: Dataset,
    cfg: ExperimentConfig,
    *,
    seed: int,
    epochs: int,
) -> None:
    """Train only ``aux`` (e.g. the Learning Loss head) on a frozen ``model`` in eval mode.

    ``cfg`` is the experiment's :class:`~eglpp.experiment.config.ExperimentConfig`.
    """
    device = torch.device(cfg.device)
    model.to(device).eval()
    aux.to(device).train()
    optimizer = torch.optim.Adam(aux.parameters(), lr=cfg.cycle_train.lr)
    bs = cfg.cycle_train.batch_size
    loader = DataLoader(
        dataset,
        batch_size=bs,
        drop_last=len(dataset) > bs,
        sampler=RandomSampler(dataset, generator=torch.Generator().manual_seed(seed)),
    )
    for _ in range(epochs):
        for batch in loader:
            images = batch["image"].to(device)
            visible = batch["visible"].to(device)
            joints = batch["joints"].to(device)
            target = target_heatmaps(joints, visible, cfg.input_size, cfg.cycle_train.sigma, STRIDE)
            with torch.no_grad():
                out = model(images, return_features=True)
                per_example = heatmap_loss_per_example(out.heatmaps, target, visible)
            loss = aux(out.features, per_example)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
