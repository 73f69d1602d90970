"""Regression scores: pure functions of a Gaussian ensemble's arrays.

Every score takes the predictive of an ensemble on the unlabelled pool (Eqs. 5-11 of the
paper, see ``shared/paper/EQUATIONS.md``):

- ``mean`` (K, U): member means μ_k(x),
- ``var`` (K, U): member variances σ_k²(x),
- ``f`` (U,): the prediction of the model trained on all labelled data,
- ``grad_sq`` (U,): its squared parameter-gradient norm ‖∇_θ f(x)‖²,

and returns one score per unlabelled item, higher meaning more wanted. Turning scores into
``query_indices`` is :func:`eglpp.selection.select_top` (or :mod:`eglpp.regression.batch`).

References
----------
Shukla, M. "Bayesian Uncertainty and Expected Gradient Length - Regression: Two Sides of the
Same Coin?" WACV 2022.
Cai, W., Zhang, Y., Zhou, J. "Maximizing expected model change for active learning in
regression." ICDM 2013.
Kendall, A., Gal, Y. "What uncertainties do we need in Bayesian deep learning for computer
vision?" NeurIPS 2017.
Settles, B., Craven, M. "An analysis of active learning strategies for sequence labeling
tasks." EMNLP 2008 (information density).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "check_predictive",
    "egl",
    "emcm",
    "predictive_variance",
    "random_scores",
    "pool_density",
]


def check_predictive(
    mean: np.ndarray, var: np.ndarray, f: np.ndarray, grad_sq: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Validate and convert the ensemble arrays; raise ``ValueError`` naming the bad one."""
    mean = np.asarray(mean, dtype=np.float64)
    var = np.asarray(var, dtype=np.float64)
    f = np.asarray(f, dtype=np.float64)
    if mean.ndim != 2:
        raise ValueError(f"mean must be (K, U) member means, got shape {mean.shape}")
    K, U = mean.shape
    if var.shape != (K, U):
        raise ValueError(f"var must have the shape of mean {(K, U)}, got {var.shape}")
    if f.shape != (U,):
        raise ValueError(f"f must be (U,) = ({U},), got {f.shape}")
    if (var < 0).any():
        raise ValueError(f"var has {int((var < 0).sum())} negative member variances")
    if grad_sq is not None:
        grad_sq = np.asarray(grad_sq, dtype=np.float64)
        if grad_sq.shape != (U,):
            raise ValueError(f"grad_sq must be (U,) = ({U},), got {grad_sq.shape}")
    return mean, var, f, grad_sq


def egl(grad_sq: np.ndarray, mean: np.ndarray, var: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Expected gradient length for regression, closed form (Eq. 7 / Eq. 10).

    .. math::
        \\mathrm{EGL}(x) = \\|\\nabla_\\theta f(x)\\|^2
            \\sum_{k=1}^{K} \\left[\\sigma_k^2(x) + (\\mu_k(x) - f(x))^2\\right]

    This is Eq. 5 with the Gaussian expectation done in closed form (the constant 4 of
    ``‖∇ℓ‖² = 4 (y - f)² ‖∇f‖²`` dropped). ``grad_sq`` is ``‖[x, 1]‖²`` for a linear model with
    intercept, the exact per-example squared gradient norm for a network, and 1 for a GP.

    Parameters
    ----------
    grad_sq : (U,) array
    mean, var : (K, U) arrays
    f : (U,) array

    Returns
    -------
    scores : (U,) array

    Examples
    --------
    >>> egl(np.array([2.0]), np.array([[1.0], [3.0]]), np.array([[0.5], [0.5]]), np.array([2.0]))
    array([6.])
    """
    mean, var, f, grad_sq = check_predictive(mean, var, f, grad_sq)
    return grad_sq * (var + (mean - f) ** 2).sum(axis=0)


def emcm(grad_norm: np.ndarray, mean: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Expected model change maximisation of Cai et al. (Eq. 2).

    .. math::
        \\mathrm{EMCM}(x) = \\frac{1}{K} \\sum_{k=1}^{K} |f(x) - f_k(x)| \\, \\|\\varphi(x)\\|

    with ``grad_norm`` = ‖φ(x)‖ = ‖∇_θ f(x)‖ (not squared; ``‖[x, 1]‖`` for a linear model).
    It is Eq. 6 with one draw per member at its mode and the norm not squared.
    """
    mean, _, f, grad_norm = check_predictive(mean, np.zeros_like(mean), f, grad_norm)
    return np.abs(mean - f).mean(axis=0) * grad_norm


def predictive_variance(mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Bayesian predictive variance of the ensemble, aleatoric + epistemic (Eq. 11).

    .. math::
        \\mathrm{Var}(y) \\approx \\frac{1}{K}\\sum_k \\sigma_k^2
            + \\frac{1}{K}\\sum_k \\mu_k^2 - \\Big(\\frac{1}{K}\\sum_k \\mu_k\\Big)^2

    When ``f`` is the ensemble mean, ``egl = grad_sq · K · predictive_variance``.
    """
    mean, var, _, _ = check_predictive(mean, var, np.asarray(mean)[0])
    return var.mean(axis=0) + mean.var(axis=0)


def random_scores(n_unlabelled: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform random scores: top-``budget`` of them is a uniform random sample."""
    return rng.random(n_unlabelled)


def pool_density(
    x_pool: np.ndarray,
    n_neighbours: int = 10,
    max_reference: int = 2000,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Information density of each pool item (Settles & Craven): a kNN density in (0, 1].

    ``density(x) = 1 / (1 + d̄_k(x) / median d̄_k)`` where ``d̄_k(x)`` is the mean Euclidean
    distance to the ``n_neighbours`` nearest pool items (a random subset of at most
    ``max_reference`` pool items is the reference set, taken with ``rng``). Items in dense
    regions score near 1, isolated high-leverage items near 0.
    """
    x_pool = np.asarray(x_pool, dtype=np.float64)
    U = x_pool.shape[0]
    ref = x_pool
    if U > max_reference:
        rng = rng if rng is not None else np.random.default_rng(0)
        ref = x_pool[rng.choice(U, max_reference, replace=False)]
    k = min(n_neighbours, ref.shape[0] - 1)
    if k < 1:
        return np.ones(U)
    d_mean = np.empty(U)
    for start in range(0, U, 4096):  # chunks keep memory at 4096 × |ref|
        block = x_pool[start : start + 4096]
        d2 = (block**2).sum(1)[:, None] - 2 * block @ ref.T + (ref**2).sum(1)[None, :]
        d = np.sqrt(np.maximum(d2, 0.0))
        part = np.partition(d, k, axis=1)[:, : k + 1]  # the nearest is usually the item itself
        d_mean[start : start + 4096] = (part.sum(1) - part.min(1)) / k
    scale = np.median(d_mean)
    return 1.0 / (1.0 + d_mean / (scale if scale > 0 else 1.0))
