"""The pool outputs a strategy needs, computed from a model, a pool and a labelled set.

The model is a :class:`~eglpp.scoring.contract.ModelContract` (any network; eglpp's
``StackedHourglass`` is read as :func:`~eglpp.scoring.contract.hourglass_contract`), so
``eglpp.score``, the experiment loop and ``eglpp select`` share this one path.
:func:`pool_inputs` builds :class:`~eglpp.strategies.base.PoolInputs` with exactly the fields
that the strategy's ``needs`` names: embeddings of unlabelled and labelled inputs, the
heatmaps, the Learning Loss head's predictions, and a ``pair_gradnorms`` function that
computes EGL++'s per-example squared gradient norms for the neighbours the strategy picks. It
takes plain datasets (pose dataset contract) and settings, so the experiment loop
(:func:`experiment_sets` splits its pool) and ``eglpp select`` (a streamed pool, one chunk at a
time, sharing one :class:`LabelledCache`) call the same code.
"""

from __future__ import annotations

import logging
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
from torch.utils.data import Dataset, Subset

from eglpp.gradnorm.base import GradNormConfig
from eglpp.gradnorm.sharded import sharded_expected_pair_gradnorms, sharded_pair_gradnorms
from eglpp.pose.hourglass import StackedHourglass
from eglpp.pose.inference import Predictions
from eglpp.scoring.contract import ModelContract, as_contract
from eglpp.scoring.forward import forward_pool
from eglpp.scoring.labels import LabelledCache
from eglpp.scoring.settings import ScoringConfig
from eglpp.strategies.base import PoolInputs

_LOG = logging.getLogger("eglpp.scoring")

__all__ = ["LabelledCache", "pool_inputs", "pool_inputs_and_predictions", "gradnorm_bar"]


def pool_inputs(
    needs: frozenset[str],
    model: StackedHourglass | ModelContract,
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
    model: StackedHourglass | ModelContract,
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
    model : ModelContract or StackedHourglass
        The network and how to read it (:mod:`eglpp.scoring.contract`).
    aux : nn.Module or None
        The strategy's auxiliary module (Learning Loss's head on the contract's features).
    pool_set, labelled : Dataset
        The unlabelled candidates (tensors, ``(input, ...)`` tuples or pose dicts) and the
        labelled set (pairs or a pose data set, :mod:`eglpp.scoring.labels`).
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
    contract = as_contract(model)
    if cache is None:
        cache = LabelledCache(contract, labelled, batch_size=batch_size, device=device, sigma=sigma)
    fields: dict = {"n_unlabelled": len(pool_set), "device": str(device)}
    pred = None
    if always_predict or needs & {"embeddings", "heatmaps", "predicted_loss"}:
        pred = forward_pool(
            contract,
            pool_set,
            want=needs & {"embeddings", "heatmaps"},
            aux=aux if "predicted_loss" in needs else None,
            batch_size=batch_size,
            device=device,
        )
        fields["embeddings_unlabelled"] = pred.embeddings
        fields["heatmaps_unlabelled"] = pred.heatmaps
        fields["predicted_loss"] = pred.aux
    if "embeddings" in needs:
        fields["embeddings_labelled"] = cache.embeddings()
        _check_widths(contract, pred.embeddings, fields["embeddings_labelled"])
    kw = {"batch_size": batch_size, "device": device, "progress": progress}
    fields |= _gradnorm_fields(needs, contract, pool_set, cache, scoring, probe_seed, kw)
    return PoolInputs(**fields), pred


def _gradnorm_fields(needs, contract, pool_set, cache, scoring, probe_seed, kw) -> dict:
    """The ``pair_gradnorms`` / ``expected_gradnorms`` callables that ``needs`` asks for."""
    kw = {**kw, "config": GradNormConfig(
        params=scoring.gradnorm, method=scoring.gradnorm_method, prediction=contract.prediction_of,
        max_memory=scoring.max_memory, report=lambda text: _note_method(cache, text),
    )}  # fmt: skip
    fields = {}
    if "pair_gradnorms" in needs:
        fields["pair_gradnorms"] = _gradnorm_fn(contract.model, pool_set, cache, **kw)
    if "expected_gradnorms" in needs:
        probes = {"n_exact": scoring.n_exact, "n_probes": scoring.n_probes, "seed": probe_seed}
        fields["expected_gradnorms"] = _gradnorm_fn(
            contract.model, pool_set, cache, **kw, probes=probes
        )
    return fields


def _note_method(cache: LabelledCache, text: str) -> None:
    """Log the gradient-norm method the first time it runs (or when it changes) and keep it on
    the cache (``eglpp select`` writes it to ``summary.json``)."""
    if cache.gradnorm_method != text:
        _LOG.info("gradient norms: %s", text)
        cache.gradnorm_method = text


def _check_widths(contract: ModelContract, zu: np.ndarray, zl: np.ndarray) -> None:
    if zu.shape[1] != zl.shape[1]:
        raise ValueError(
            f"{contract.flag('embedding')} {contract.embedding!r}: embeddings of width "
            f"{zu.shape[1]} for the unlabelled inputs but {zl.shape[1]} for the labelled ones "
            "(inputs of different sizes flattened? use pooling='mean')"
        )


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

    kw = {"batch_size": batch_size, "device": device, "config": config}

    def pair_gradnorms(neighbours: np.ndarray, label_source: str, rows=None) -> np.ndarray:
        targets, weights = cache.targets(label_source)
        model.to(device)
        kw["loss_fn"] = cache.loss_fn()
        images = pool_set if rows is None else Subset(pool_set, np.asarray(rows).tolist())
        what = f"gradient norms, {np.shape(neighbours)[1]} neighbours per image"
        with gradnorm_bar(progress, what, len(neighbours)) as bar:
            return sharded_pair_gradnorms(
                model, images, targets, weights, neighbours, progress=bar, **kw
            )

    def expected_gradnorms(neighbours: np.ndarray, p: np.ndarray, label_source: str):
        targets, weights = cache.targets(label_source)
        model.to(device)
        kw["loss_fn"] = cache.loss_fn()
        with gradnorm_bar(progress, "gradient norms (approx)", len(neighbours)) as bar:
            return sharded_expected_pair_gradnorms(
                model, pool_set, targets, weights, neighbours, p, **probes, **kw, progress=bar
            )

    return pair_gradnorms if probes is None else expected_gradnorms
