"""Pool-level gradient norms with the rows sharded across ``torchrun`` processes.

:func:`sharded_pair_gradnorms` and :func:`sharded_expected_pair_gradnorms` are
:func:`eglpp.gradnorm.pool.pair_gradnorms` and
:func:`eglpp.gradnorm.approx.expected_pair_gradnorms` with each process scoring a contiguous
shard of the pool (:func:`eglpp.distributed.sharded`); outside a process group they compute
every row locally.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

from eglpp.distributed import sharded
from eglpp.gradnorm.approx import DEFAULT_N_EXACT, expected_pair_gradnorms, probe_signs
from eglpp.gradnorm.base import GradNormConfig, LossFn
from eglpp.gradnorm.pool import Progress, pair_gradnorms

__all__ = ["sharded_pair_gradnorms", "sharded_expected_pair_gradnorms"]


def _shard_images(images, rows: slice, batch_size: int):
    """Rows ``rows`` of a (U, C, H, W) tensor/array, or a loader over a map-style dataset."""
    if isinstance(images, (torch.Tensor, np.ndarray)):
        return images[rows]
    if hasattr(images, "__getitem__") and hasattr(images, "__len__"):  # a map-style dataset
        part = Subset(images, range(rows.start, rows.stop))
        return DataLoader(part, batch_size=batch_size, shuffle=False)
    raise TypeError(
        "images must be a (U, C, H, W) tensor/array or a map-style Dataset of the pool to be "
        f"sharded, got {type(images).__name__}"
    )


def sharded_pair_gradnorms(
    model: torch.nn.Module,
    images: Tensor | np.ndarray | Dataset,
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
    """:func:`eglpp.gradnorm.pool.pair_gradnorms` (U, K) with the rows split across processes.

    ``images`` is a (U, C, H, W) tensor/array or a map-style dataset of the pool (items are
    dicts with ``"image"``); the other arguments are those of ``pair_gradnorms``. Every rank
    must call this with the same arguments; every rank gets the whole (U, K) array.
    ``progress(rows_done, rows)`` counts this rank's shard.
    """
    neighbours = np.asarray(neighbours)
    if neighbours.ndim != 2:
        raise ValueError(f"neighbours must be a (U, K) integer array, got {neighbours.shape}")

    def local(rows: slice) -> np.ndarray:
        return pair_gradnorms(
            model,
            _shard_images(images, rows, batch_size),
            targets_labelled,
            weights_labelled,
            neighbours[rows],
            batch_size=batch_size,
            device=device,
            config=config,
            loss_fn=loss_fn,
            progress=progress,
        )

    return sharded(local, neighbours.shape[0], align=batch_size)


def sharded_expected_pair_gradnorms(
    model: torch.nn.Module,
    images: Tensor | np.ndarray | Dataset,
    targets_labelled: Tensor | np.ndarray,
    weights_labelled: Tensor | np.ndarray,
    neighbours: np.ndarray,
    p: np.ndarray,
    *,
    n_exact: int = DEFAULT_N_EXACT,
    n_probes: int = 0,
    seed: int = 0,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
    config: GradNormConfig = GradNormConfig(),
    loss_fn: LossFn,
    progress: Progress | None = None,
) -> np.ndarray:
    """:func:`eglpp.gradnorm.approx.expected_pair_gradnorms` (U,) with the rows sharded.

    The random signs are drawn for the whole pool from ``seed`` exactly as the one-process
    function draws them, and each shard uses its rows' signs: the scores do not depend on the
    number of processes.
    """
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 2 or p.shape != np.shape(neighbours) or (p < 0).any():
        raise ValueError(f"p must be non-negative with the shape of neighbours, got {p.shape}")
    if n_probes < 0 or n_exact < 0:
        raise ValueError(f"n_exact and n_probes must be non-negative, got {n_exact}, {n_probes}")
    U, K = p.shape
    signs = probe_signs(U, n_probes, K, seed)

    def local(rows: slice) -> np.ndarray:
        return expected_pair_gradnorms(
            model,
            _shard_images(images, rows, batch_size),
            targets_labelled,
            weights_labelled,
            np.asarray(neighbours)[rows],
            p[rows],
            n_exact=n_exact,
            signs=signs[rows],
            batch_size=batch_size,
            device=device,
            config=config,
            loss_fn=loss_fn,
            progress=progress,
        )

    return sharded(local, U, align=batch_size)
