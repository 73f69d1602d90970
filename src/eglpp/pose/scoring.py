"""The pool outputs a strategy needs, computed by the loop from the current model.

:func:`pool_inputs` builds :class:`~eglpp.strategies.base.PoolInputs` with exactly the fields
that the strategy's ``needs`` names: embeddings of unlabelled and labelled images, the last
stack's heatmaps, the Learning Loss head's predictions, and a ``pair_gradnorms`` function that
computes EGL++'s per-example squared gradient norms for the neighbours the strategy picks.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, RandomSampler, Subset

from eglpp.pose.data import PoseData
from eglpp.pose.experiment import ExperimentConfig
from eglpp.pose.heatmaps import gaussian_heatmaps, heatmap_loss_per_example, input_to_heatmap
from eglpp.pose.hourglass import STRIDE, StackedHourglass
from eglpp.pose.train import predict
from eglpp.strategies.base import PoolInputs

__all__ = ["labelled_set", "pool_inputs", "fit_auxiliary", "target_heatmaps"]


def labelled_set(data: PoseData, labelled_map: np.ndarray):
    """(dataset of every labelled image, their pool indices): the base set, then the pool's."""
    pool_idx = np.flatnonzero(labelled_map >= 0)
    parts = ([data.base] if data.base is not None else []) + [Subset(data.pool, pool_idx.tolist())]
    dataset = parts[0] if len(parts) == 1 else ConcatDataset(parts)
    if isinstance(dataset, ConcatDataset):  # the training code reads these from the dataset
        dataset.skeleton, dataset.input_size = data.skeleton, data.input_size
    return dataset, pool_idx


def target_heatmaps(
    joints: torch.Tensor, visible: torch.Tensor, input_size: int, sigma: float
) -> torch.Tensor:
    """Gaussian targets (N, J, h, w) of joints (N, J, 2) given in input pixels."""
    h = input_size // STRIDE
    return gaussian_heatmaps(input_to_heatmap(joints, STRIDE), visible, (h, h), sigma)


def _stack(dataset, key: str) -> torch.Tensor:
    loader = DataLoader(dataset, batch_size=256, shuffle=False)
    return torch.cat([batch[key] for batch in loader])


def pool_inputs(
    needs: frozenset[str],
    model: StackedHourglass,
    aux,
    data: PoseData,
    labelled_map: np.ndarray,
    cfg: ExperimentConfig,
) -> PoolInputs:
    """Compute what ``needs`` asks for, with the model in eval mode, in unlabelled order."""
    unlabelled = np.flatnonzero(labelled_map < 0)
    pool_set = Subset(data.pool, unlabelled.tolist())
    pool_set.skeleton, pool_set.input_size = data.skeleton, data.input_size
    lab_set, _ = labelled_set(data, labelled_map)
    kw = {"batch_size": cfg.batch_size, "device": cfg.device}
    fields: dict = {"n_unlabelled": len(unlabelled)}
    if needs & {"embeddings", "heatmaps", "predicted_loss"}:
        pred = predict(
            model,
            pool_set,
            return_embeddings="embeddings" in needs,
            return_heatmaps="heatmaps" in needs,
            aux=aux if "predicted_loss" in needs else None,
            **kw,
        )
        fields["embeddings_unlabelled"] = pred.embeddings
        fields["heatmaps_unlabelled"] = pred.heatmaps
        fields["predicted_loss"] = pred.aux
    if "embeddings" in needs:
        fields["embeddings_labelled"] = predict(
            model, lab_set, return_embeddings=True, **kw
        ).embeddings
    if "pair_gradnorms" in needs:
        fields["pair_gradnorms"] = _gradnorm_fn(model, pool_set, lab_set, cfg)
    return PoolInputs(**fields)


def _gradnorm_fn(model, pool_set, lab_set, cfg: ExperimentConfig):
    """``pair_gradnorms(neighbours (U, K), label_source) -> (U, K)`` for this model and data."""

    def pair_gradnorms(neighbours: np.ndarray, label_source: str) -> np.ndarray:
        visible = _stack(lab_set, "visible")  # (L, J)
        if label_source == "ground_truth":
            targets = target_heatmaps(
                _stack(lab_set, "joints"), visible, cfg.input_size, cfg.cycle_train.sigma
            )
        elif label_source == "prediction":
            pred = predict(
                model, lab_set, return_heatmaps=True, batch_size=cfg.batch_size, device=cfg.device
            )
            targets = torch.from_numpy(pred.heatmaps)
            visible = torch.ones_like(visible)
        else:
            raise ValueError(
                f"label_source must be 'ground_truth' or 'prediction', got {label_source!r}"
            )
        from eglpp.gradnorm import GradNormConfig
        from eglpp.gradnorm import pair_gradnorms as _pair_gradnorms

        images = DataLoader(pool_set, batch_size=cfg.batch_size, shuffle=False)  # streamed
        model.to(cfg.device)
        return _pair_gradnorms(
            model,
            images,
            targets,
            visible.float(),
            neighbours,
            device=cfg.device,
            config=GradNormConfig(params=cfg.strategy.gradnorm),
        )

    return pair_gradnorms


def fit_auxiliary(
    model: StackedHourglass,
    aux: torch.nn.Module,
    dataset,
    cfg: ExperimentConfig,
    *,
    seed: int,
    epochs: int,
) -> None:
    """Train only ``aux`` (e.g. the Learning Loss head) on a frozen ``model`` in eval mode."""
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
            target = target_heatmaps(
                batch["joints"].to(device), visible, cfg.input_size, cfg.cycle_train.sigma
            )
            with torch.no_grad():
                out = model(images, return_features=True)
                per_example = heatmap_loss_per_example(out.heatmaps, target, visible)
            loss = aux(out.features, per_example)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
