"""The pool outputs a strategy needs, computed from a model, a pool and a labelled set.

:func:`pool_inputs` builds :class:`~eglpp.strategies.base.PoolInputs` with exactly the fields
that the strategy's ``needs`` names: embeddings of unlabelled and labelled images, the last
stack's heatmaps, the Learning Loss head's predictions, and a ``pair_gradnorms`` function that
computes EGL++'s per-example squared gradient norms for the neighbours the strategy picks. It
takes plain datasets (pose dataset contract) and settings, so the experiment loop
(:func:`experiment_sets` splits its pool) and ``eglpp select`` (a streamed pool, one chunk at a
time, sharing one :class:`LabelledCache`) call the same code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from eglpp.gradnorm.base import GradNormConfig
from eglpp.gradnorm.sharded import sharded_expected_pair_gradnorms, sharded_pair_gradnorms
from eglpp.pose.heatmaps import heatmap_loss, target_heatmaps
from eglpp.pose.hourglass import STRIDE, StackedHourglass
from eglpp.pose.inference import Predictions, predict
from eglpp.scoring.settings import ScoringConfig
from eglpp.strategies.base import PoolInputs

__all__ = ["LabelledCache", "pool_inputs", "pool_inputs_and_predictions", "gradnorm_bar"]


class LabelledCache:
    """The labelled set's embeddings and heatmap labels, each computed once when first asked.

    Parameters
    ----------
    model : StackedHourglass
        The model whose embeddings (and, for ``label_source="prediction"``, heatmaps) are used.
    labelled : Dataset
        The labelled set (pose dataset contract).
    batch_size, device : as for :func:`~eglpp.pose.inference.predict`
    sigma : float
        σ of the ground-truth target heatmaps, heatmap px (the training ``sigma``).
    """

    def __init__(self, model, labelled, *, batch_size: int, device, sigma: float) -> None:
        self.model, self.labelled = model, labelled
        self.batch_size, self.device, self.sigma = batch_size, device, sigma
        self._predictions: Predictions | None = None
        self._truth: tuple[torch.Tensor, torch.Tensor] | None = None
        self._targets: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def predictions(self) -> Predictions:
        """The model's predictions of the labelled images, with their (L, C) embeddings."""
        if self._predictions is None:
            self._predictions = predict(
                self.model,
                self.labelled,
                return_embeddings=True,
                batch_size=self.batch_size,
                device=self.device,
            )
        return self._predictions

    def embeddings(self) -> np.ndarray:
        """(L, C) embeddings of the labelled images."""
        return self.predictions().embeddings

    def truth(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(joints (L, J, 2) input px, visible (L, J) bool) of the labelled set, read once."""
        if self._truth is None:
            loader = DataLoader(self.labelled, batch_size=256, shuffle=False)
            batches = [(b["joints"], b["visible"]) for b in loader]
            self._truth = (torch.cat([j for j, _ in batches]), torch.cat([v for _, v in batches]))
        return self._truth

    def targets(self, label_source: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(heatmap labels (L, J, h, w), joint weights (L, J) float) for ``label_source``."""
        if label_source not in ("ground_truth", "prediction"):
            raise ValueError(
                f"label_source must be 'ground_truth' or 'prediction', got {label_source!r}"
            )
        if label_source not in self._targets:
            joints, visible = self.truth()  # (L, J, 2), (L, J)
            if label_source == "ground_truth":
                images = self.labelled[0]["image"]  # (3, S, S)
                targets = target_heatmaps(joints, visible, images.shape[-1], self.sigma, STRIDE)
            else:
                pred = predict(
                    self.model,
                    self.labelled,
                    return_heatmaps=True,
                    batch_size=self.batch_size,
                    device=self.device,
                )
                targets = torch.from_numpy(pred.heatmaps)
                visible = torch.ones_like(visible)
            self._targets[label_source] = (targets, visible.float())
        return self._targets[label_source]


def pool_inputs(
    needs: frozenset[str],
    model: StackedHourglass,
    aux: nn.Module | None,
    pool_set: Dataset,
    labelled: Dataset,
    **settings: Any,
) -> PoolInputs:
    """What ``needs`` asks for: :func:`pool_inputs_and_predictions` without the predictions
    (no forward pass unless a need asks for one); ``settings`` are its keyword arguments."""
    return pool_inputs_and_predictions(
        needs, model, aux, pool_set, labelled, always_predict=False, **settings
    )[0]


def pool_inputs_and_predictions(
    needs: frozenset[str],
    model: StackedHourglass,
    aux: nn.Module | None,
    pool_set: Dataset,
    labelled: Dataset,
    *,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    sigma: float = 1.0,
    scoring: ScoringConfig = ScoringConfig(),
    cache: LabelledCache | None = None,
    always_predict: bool = True,
    probe_seed: int = 0,
    progress: bool = False,
) -> tuple[PoolInputs, Predictions | None]:
    """Compute what ``needs`` asks for, with the model in eval mode, in ``pool_set``'s order,
    and the pool's :class:`~eglpp.pose.inference.Predictions` (decoded joints, maxima) from the
    same forward pass.

    Parameters
    ----------
    needs : frozenset of str
        The strategy's ``needs``.
    model, aux : the pose network and the strategy's auxiliary module (or None)
    pool_set, labelled : Dataset
        The unlabelled candidates and the labelled set (pose dataset contract).
    batch_size, device : as for :func:`~eglpp.pose.inference.predict`
    sigma : float
        σ of the labelled set's ground-truth target heatmaps (heatmap px).
    scoring : ScoringConfig
        How the gradient norms are computed: their parameters and method, and
        ``expected_gradnorms``' neighbours taken exactly and random-sign probes (``approx_check``
        is the caller's: :mod:`eglpp.scoring.approx_check`).
    cache : LabelledCache, optional
        Reuse the labelled set's embeddings and targets across calls (e.g. pool chunks); by
        default a fresh one for this call.
    always_predict : bool
        Run the forward pass (and return predictions) even when ``needs`` asks for none of its
        outputs; otherwise the predictions are None then.
    probe_seed : int
        The seed of ``expected_gradnorms``' random-sign probes.
    progress : bool
        Show a progress bar while the gradient-norm functions run (EGL++'s minutes); off where
        the caller has its own (``eglpp select``: one per chunk).

    Under ``torchrun`` the gradient norms' rows are sharded across the processes
    (:mod:`eglpp.distributed`); every process must then make the same calls.
    """
    if cache is None:
        cache = LabelledCache(model, labelled, batch_size=batch_size, device=device, sigma=sigma)
    fields: dict = {"n_unlabelled": len(pool_set), "device": str(device)}
    pred = None
    if always_predict or needs & {"embeddings", "heatmaps", "predicted_loss"}:
        pred = predict(
            model,
            pool_set,
            return_embeddings="embeddings" in needs,
            return_heatmaps="heatmaps" in needs,
            aux=aux if "predicted_loss" in needs else None,
            batch_size=batch_size,
            device=device,
        )
        fields["embeddings_unlabelled"] = pred.embeddings
        fields["heatmaps_unlabelled"] = pred.heatmaps
        fields["predicted_loss"] = pred.aux
    if "embeddings" in needs:
        fields["embeddings_labelled"] = cache.embeddings()
    kw = {"batch_size": batch_size, "device": device, "progress": progress}
    kw["config"] = GradNormConfig(params=scoring.gradnorm, method=scoring.gradnorm_method)
    if "pair_gradnorms" in needs:
        fields["pair_gradnorms"] = _gradnorm_fn(model, pool_set, cache, **kw)
    if "expected_gradnorms" in needs:
        probes = {"n_exact": scoring.n_exact, "n_probes": scoring.n_probes, "seed": probe_seed}
        fields["expected_gradnorms"] = _gradnorm_fn(model, pool_set, cache, **kw, probes=probes)
    return PoolInputs(**fields), pred


@contextmanager
def gradnorm_bar(
    enabled: bool, what: str, rows: int | None = None
) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar of gradient-norm rows (the ``progress`` callback of
    :mod:`eglpp.gradnorm.pool`, which also sets the total: this process's rows), or None when
    not ``enabled``."""
    if not enabled:
        yield None
        return
    columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), TimeRemainingColumn(), transient=True) as bar:
        task = bar.add_task(what, total=rows)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _gradnorm_fn(
    model, pool_set, cache: LabelledCache, *, batch_size, device, config, progress, probes=None
):
    """``pair_gradnorms(neighbours (U, K), label_source, rows=None) -> (U, K)`` (with ``rows``,
    only those pool rows: ``neighbours`` then has one row each), or, with ``probes`` (n_exact,
    n_probes, seed), ``expected_gradnorms(neighbours, p, label_source) -> (U,)``
    (``eglpp.gradnorm.approx``); rows sharded across torchrun processes, images streamed; a
    progress bar of the rows while each call runs when ``progress``."""

    kw = {"batch_size": batch_size, "device": device, "config": config, "loss_fn": heatmap_loss}

    def pair_gradnorms(neighbours: np.ndarray, label_source: str, rows=None) -> np.ndarray:
        targets, weights = cache.targets(label_source)
        model.to(device)
        images = pool_set if rows is None else Subset(pool_set, np.asarray(rows).tolist())
        what = f"gradient norms, {np.shape(neighbours)[1]} neighbours per image"
        with gradnorm_bar(progress, what, len(neighbours)) as bar:
            return sharded_pair_gradnorms(
                model, images, targets, weights, neighbours, progress=bar, **kw
            )

    def expected_gradnorms(neighbours: np.ndarray, p: np.ndarray, label_source: str):
        targets, weights = cache.targets(label_source)
        model.to(device)
        with gradnorm_bar(progress, "gradient norms (approx)", len(neighbours)) as bar:
            return sharded_expected_pair_gradnorms(
                model, pool_set, targets, weights, neighbours, p, **probes, **kw, progress=bar
            )

    return pair_gradnorms if probes is None else expected_gradnorms
