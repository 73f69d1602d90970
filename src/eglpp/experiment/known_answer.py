"""A known-answer check of the pose strategies: a pool of near-duplicates and new people.

Half of the pool are near-duplicates of labelled images (the same rendered person, pose and
appearance, with a little pixel noise), half are people the model has not seen. What each
strategy must do follows from its own theory:

- the embedding: each duplicate's nearest labelled image is its own twin;
- Core-set (k-center greedy) leaves the duplicates alone: they lie at ~0 distance from the
  labelled set;
- multi-peak entropy scores them low where the model is confident on what it was trained on;
- EGL++ (Eq. 12): a duplicate's most probable neighbour is its twin, and for a model that fits
  its labelled images the twin's term (the gradient of the loss taken with the twin's label) is
  ~0; the other neighbours' terms are not, and the perplexity calibration (Eq. 13) spreads
  p(j|i) over about ``perplexity`` neighbours, which caps p(twin). So a duplicate scores below a
  new image by about the factor 1 − p(twin): clearly at a small perplexity, hardly at the
  paper's 20.

:func:`known_answer` measures all of this for a model; ``tests/strategies/test_known_answer.py``
asserts it on a model trained to near-zero loss and ``benchmarks/known_answer.py`` measures it
with the quick preset's model at scale.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from eglpp.pose.datasets.synthetic import SyntheticPoseDataset
from eglpp.scoring.pool_inputs import pool_inputs
from eglpp.strategies import Strategy

__all__ = ["duplicate_pool", "known_answer"]


def duplicate_pool(
    labelled: SyntheticPoseDataset,
    new: SyntheticPoseDataset,
    n_duplicates: int,
    *,
    noise: float = 3.0,
    seed: int = 0,
) -> tuple[SyntheticPoseDataset, np.ndarray]:
    """A pool: near-duplicates of ``labelled``'s first ``n_duplicates`` items (Gaussian pixel
    noise of std ``noise`` grey levels, same joints), then every item of ``new``.

    Returns the pool and ``twin`` (N_pool,): the labelled index each item duplicates, −1 for a
    new person.
    """
    if not 1 <= n_duplicates <= len(labelled):
        raise ValueError(f"n_duplicates={n_duplicates}: expected 1..{len(labelled)}")
    g = torch.Generator().manual_seed(seed)
    src = labelled.images[:n_duplicates].float()
    jitter = (src + noise * torch.randn(src.shape, generator=g)).round().clamp(0, 255)
    pool = copy.copy(new)
    pool.images = torch.cat([jitter.to(torch.uint8), new.images])
    for name in ("joints", "visible", "occluded"):
        both = (getattr(labelled, name)[:n_duplicates], getattr(new, name))
        setattr(pool, name, np.concatenate(both))
    twin = np.concatenate([np.arange(n_duplicates), np.full(len(new), -1)])
    return pool, twin


def known_answer(
    model: torch.nn.Module,
    labelled: SyntheticPoseDataset,
    pool: SyntheticPoseDataset,
    twin: np.ndarray,
    strategies: dict[str, Strategy],
    budget: int,
    *,
    sigma: float,
    seed: int = 0,
    scoring=None,
) -> dict:
    """What each strategy does with the duplicate pool of :func:`duplicate_pool`.

    Returns ``{"nn_twin": share of duplicates whose nearest labelled embedding is the twin,
    "strategies": {name: {"duplicate_share": share of the selection that are duplicates,
    "score_duplicates", "score_new": mean scores, "auc": P(score of a new person > score of a
    duplicate)}}}``; for EGL++ also ``p_twin`` (mean p(twin | duplicate), 0 where the twin is
    not among the K neighbours) and ``gradnorm_twin_ratio`` (the twin's squared gradient norm
    over the mean of the other neighbours', median over duplicates).
    """
    dup = twin >= 0
    needs = frozenset().union(*(s.needs for s in strategies.values())) | {"embeddings"}
    settings = {"sigma": sigma, **({"scoring": scoring} if scoring is not None else {})}
    inputs = pool_inputs(needs, model, None, pool, labelled, **settings)
    zu, zl = inputs.embeddings_unlabelled, inputs.embeddings_labelled
    d2 = ((zu[dup, None, :] - zl[None, :, :]) ** 2).sum(-1)
    out: dict = {"nn_twin": float((d2.argmin(1) == twin[dup]).mean()), "strategies": {}}
    for name, strategy in strategies.items():
        rng = np.random.default_rng(seed)
        positions, scores, details = strategy.select_explained(inputs, budget, rng)
        scores = np.asarray(scores, np.float64)
        row = {
            "duplicate_share": float(dup[positions].mean()),
            "score_duplicates": float(scores[dup].mean()),
            "score_new": float(scores[~dup].mean()),
            "auc": float((scores[~dup][:, None] > scores[dup][None, :]).mean()),
        }
        if "neighbours" in details and "p" in details:
            nb, p = np.asarray(details["neighbours"])[dup], np.asarray(details["p"])[dup]
            is_twin = nb == twin[dup][:, None]
            row["p_twin"] = float((p * is_twin).sum(1).mean())
            g = inputs.pair_gradnorms(np.asarray(details["neighbours"]), "ground_truth")[dup]
            has = is_twin.any(1)
            twin_g = (g * is_twin).sum(1)[has]
            others = np.where(is_twin, np.nan, g)[has]
            ratio = twin_g / np.nanmean(others, axis=1)
            row["gradnorm_twin_ratio"] = float(np.median(ratio)) if has.any() else float("nan")
        out["strategies"][name] = row
    return out
