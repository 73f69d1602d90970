"""Squared gradient norms over a pool: each unlabelled image against its K labelled neighbours.

:func:`pair_gradnorms` gives EGL++ (Eq. 12) its ``‖∇θ ℓ(y_j, f(x_i))‖²`` for every unlabelled
image ``x_i`` and each neighbour ``j``: the neighbours' heatmap labels are gathered batch by
batch (:func:`pool_batches`) and handed to :func:`eglpp.gradnorm.per_example_gradnorms`, which
holds the per-image math. ``eglpp.gradnorm.approx`` and ``eglpp.distributed`` batch the pool the
same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np
import torch
from torch import Tensor, nn

from eglpp.gradnorm.base import GradNormConfig, LossFn
from eglpp.gradnorm.exact import per_example_gradnorms

__all__ = ["pair_gradnorms", "pool_batches", "Progress"]

#: ``progress(rows_done, rows)`` after each batch: this call's (or process's) rows so far.
Progress = Callable[[int, int], None]


def _image_batches(images, batch_size: int) -> Iterable[Tensor]:
    if isinstance(images, (Tensor, np.ndarray)):
        images = torch.as_tensor(images)
        for start in range(0, images.shape[0], batch_size):
            yield images[start : start + batch_size]
        return
    for batch in images:
        yield batch["image"] if isinstance(batch, dict) else torch.as_tensor(batch)


def pair_gradnorms(
    model: nn.Module,
    images: Tensor | np.ndarray | Iterable,
    targets_labelled: Tensor | np.ndarray,
    weights_labelled: Tensor | np.ndarray,
    neighbours: np.ndarray,
    *,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
    config: GradNormConfig = GradNormConfig(),
    loss_fn: LossFn,
    progress: Progress | None = None,
) -> np.ndarray:
    """``‖∇θ ℓ(y_j, f(x_i))‖²`` for every unlabelled image i and each of its neighbours j.

    Parameters
    ----------
    model : nn.Module
        The network (already on ``device``).
    images : (U, ...) tensor/array, or an iterable of (b, ...) batches (or dicts with
        ``"image"``, e.g. a DataLoader over the pool) in unlabelled order.
    targets_labelled : (L, ...)
        The labelled inputs' labels, any shape the loss takes: for the hourglass (L, J, h, w)
        ground-truth heatmaps, or the model's predicted last-stack heatmaps for
        ``label_source="prediction"`` (the caller chooses).
    weights_labelled : (L, ...)
        What the loss takes beside each label: for the hourglass (L, J) joint weights (1
        annotated, 0 missing; all ones for predictions).
    neighbours : (U, K) int
        Positions in the labelled set.
    batch_size : int
        Images per vectorised batch when ``images`` is an array.
    device, config, loss_fn
        See :func:`eglpp.gradnorm.per_example_gradnorms`.
    progress : callable, optional
        ``progress(rows_done, U)`` after each batch (e.g. a progress bar's update).

    Returns
    -------
    (U, K) float64 array.
    """
    out = np.zeros(np.shape(neighbours), dtype=np.float64)
    for rows, batch, y, w in pool_batches(
        images, targets_labelled, weights_labelled, neighbours, batch_size=batch_size,
        device=device, progress=progress,
    ):  # fmt: skip
        g = per_example_gradnorms(model, batch, y, w, config=config, loss_fn=loss_fn)
        out[rows] = g.double().cpu().numpy()
    return out


def pool_batches(
    images: Tensor | np.ndarray | Iterable,
    targets_labelled: Tensor | np.ndarray,
    weights_labelled: Tensor | np.ndarray,
    neighbours: np.ndarray,
    *,
    batch_size: int,
    device: str | torch.device,
    progress: Progress | None = None,
) -> Iterator[tuple[slice, Tensor, Tensor, Tensor]]:
    """Batches ``(rows, images (b, ...), targets (b, K, ...), weights (b, K, ...))`` (for the
    hourglass images (b, C, H, W), heatmaps (b, K, J, h, w) and joint weights (b, K, J)).

    Checks the arguments of :func:`pair_gradnorms` and that ``images`` yields exactly U rows;
    ``progress(rows_done, U)`` is called once a batch has been used (when the next is asked).
    """
    neighbours = np.asarray(neighbours)
    if neighbours.ndim != 2 or not np.issubdtype(neighbours.dtype, np.integer):
        raise ValueError(f"neighbours must be a (U, K) integer array, got {neighbours.shape}")
    dev = torch.device(device)
    y = torch.as_tensor(targets_labelled, dtype=torch.float32, device=dev)
    w = torch.as_tensor(weights_labelled, device=dev).to(torch.float32)
    if y.dim() < 1 or w.dim() < 1 or w.shape[0] != y.shape[0]:
        raise ValueError(
            f"targets_labelled (L, ...) and weights_labelled (L, ...) must have the same rows, "
            f"got {tuple(y.shape)} and {tuple(w.shape)}"
        )
    U = neighbours.shape[0]
    if U and (neighbours.min() < 0 or neighbours.max() >= y.shape[0]):
        raise ValueError(f"neighbours must be positions in the labelled set [0, {y.shape[0]})")
    done = 0
    for batch in _image_batches(images, batch_size):
        b = batch.shape[0]
        if done + b > U:
            raise ValueError(f"images yield more than the {U} rows of neighbours")
        nb = torch.as_tensor(neighbours[done : done + b], device=dev)
        yield slice(done, done + b), batch.to(dev, torch.float32), y[nb], w[nb]
        done += b
        if progress is not None:
            progress(done, U)
    if done != U:
        raise ValueError(f"images yielded {done} rows but neighbours has {U}")
