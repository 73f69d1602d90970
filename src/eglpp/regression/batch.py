"""Diversity-aware batch selection for ``egl`` / ``emcm`` by simulating the sequential policy.

Cai, Zhang & Zhang (TNNLS 2017) extend EMCM to batches by simulating the sequential policy
for ``budget`` steps: pick the best item, pretend it has been labelled, update the model,
score again. Here the "update" is the Bayesian one the ensemble itself implies: labelling
``x_j`` (observation noise ``r_j`` = mean_k σ_k²(x_j)) shrinks the members' spread at every
item whose prediction co-varies with ``x_j`` across the ensemble. With the centred member
means ``D = μ - μ̄`` (K, U) and their covariance ``C = DᵀD / K``, the posterior covariance
after observing ``x_j`` is ``C - C[:, j] C[j, :] / (C[j, j] + r_j)`` (a Kalman update), and a
square-root form gives it on the members directly:

.. math::
    D \\leftarrow D - \\gamma\\, \\hat u (\\hat u^\\top D), \\quad
    u = D[:, j],\\ \\hat u = u / \\|u\\|,\\ \\beta = \\frac{C_{jj}}{C_{jj} + r_j},\\
    \\gamma = 1 - \\sqrt{1 - \\beta}

The aleatoric σ_k², the gradient factor and the bias ``μ̄ - f`` do not change (labelling
``x_j`` does not change the noise or ``‖∇f(x)‖``). Each pick costs O(K·U); items correlated with
those already picked lose score, so the batch spreads out. With ``budget = 1`` it is plain
top-1 of the score.
"""

from __future__ import annotations

import numpy as np

from eglpp.regression.strategies import check_predictive
from eglpp.selection import check_budget

__all__ = ["conditioned_batch"]


def _score(kind: str, grad_sq, mean, var, f) -> np.ndarray:
    if kind == "egl":  # Eq. 7 / 10
        return grad_sq * (var + (mean - f) ** 2).sum(axis=0)
    if kind == "emcm":  # Eq. 2
        return np.abs(mean - f).mean(axis=0) * np.sqrt(grad_sq)
    if kind == "variance":  # Eq. 11
        return var.mean(axis=0) + mean.var(axis=0)
    raise ValueError(f"unknown batch score '{kind}'; expected egl, emcm or variance")


def conditioned_batch(
    grad_sq: np.ndarray,
    mean: np.ndarray,
    var: np.ndarray,
    f: np.ndarray,
    budget: int,
    rng: np.random.Generator,
    kind: str = "egl",
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Greedy batch of ``budget`` items, re-scoring after each simulated label.

    Parameters
    ----------
    grad_sq : (U,) ‖∇_θ f(x)‖²
    mean, var : (K, U) member means and variances
    f : (U,) main-model prediction
    budget : int
    rng : numpy.random.Generator
        Breaks ties (a tiny random jitter, as in :func:`eglpp.selection.select_top`).
    kind : "egl" | "emcm" | "variance"
    weights : (U,) optional non-negative multiplier of the score (e.g. a density)

    Returns
    -------
    query_indices : (budget,) int64 positions in the unlabelled pool, in the order picked.
    """
    mean, var, f, grad_sq = check_predictive(mean, var, f, grad_sq)
    K, U = mean.shape
    check_budget(budget, U)
    centre = mean.mean(axis=0)
    D = mean - centre  # (K, U) deviations, conditioned below
    noise = var.mean(axis=0)  # (U,) r_j
    tiebreak = rng.random(U) * 1e-12
    taken = np.zeros(U, dtype=bool)
    picks = []
    for _ in range(budget):
        score = _score(kind, grad_sq, centre + D, var, f)
        if weights is not None:
            score = score * weights
        score = np.where(taken, -np.inf, score + tiebreak * np.abs(score).max())
        j = int(np.argmax(score))
        picks.append(j)
        taken[j] = True
        u = D[:, j].copy()
        norm2 = float(u @ u)
        if norm2 <= 0:
            continue
        c_jj = norm2 / K
        beta = c_jj / (c_jj + noise[j]) if c_jj + noise[j] > 0 else 1.0
        gamma = 1.0 - np.sqrt(max(1.0 - beta, 0.0))
        u_hat = u / np.sqrt(norm2)
        D -= gamma * np.outer(u_hat, u_hat @ D)
    return np.asarray(picks, dtype=np.int64)
