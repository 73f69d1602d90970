"""Bootstrap ensembles with a Gaussian predictive per member: linear, GP and network families.

Each family fits K members on bootstrap resamples of the labelled set, plus the main model
``f`` on all labelled data, and predicts, for any rows ``x``, the arrays the scores of
:mod:`eglpp.regression.strategies` take (:class:`Predictive`):
``p(y | x, θ_k) = N(μ_k(x), σ_k²(x))`` (Eq. 5), ``f(x)`` and ``‖∇_θ f(x)‖²``.

- linear (ridge with an unpenalised intercept): μ_k = θ_kᵀ[x, 1], σ_k² = member k's residual
  variance on its own bootstrap sample, ``RSS / (n - tr H)`` (Eq. 6-7); ``‖∇_θ f‖² = ‖[x, 1]‖²``.
- gp (scikit-learn ``GaussianProcessRegressor``, Eq. 9): the main GP learns the kernel
  hyperparameters; members reuse that kernel on their bootstraps. σ_k² includes the fitted
  white-noise level (``gp_noise_in_variance=True``) or not. The gradient factor is 1.
- mlp (PyTorch, Eq. 8): see :mod:`eglpp.regression.mlp`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

from eglpp.regression.mlp import MLPEnsemble
from eglpp.regression.predictive import (
    FAMILIES,
    EnsembleConfig,
    FittedEnsemble,
    Predictive,
    bootstrap_indices,
)

__all__ = [
    "EnsembleConfig",
    "Predictive",
    "FittedEnsemble",
    "bootstrap_indices",
    "fit_ridge",
    "LinearEnsemble",
    "GPEnsemble",
    "fit_ensemble",
    "FAMILIES",
]


def _design(x: np.ndarray) -> np.ndarray:
    return np.hstack([x, np.ones((x.shape[0], 1))])


def fit_ridge(x: np.ndarray, y: np.ndarray, ridge: float) -> tuple[np.ndarray, float]:
    """Ridge with an unpenalised intercept: ``(θ (D+1,), residual variance)``.

    The residual variance is ``RSS / max(n - tr H, 1)`` with ``H`` the hat matrix (for
    ``ridge=0`` and full rank, the unbiased ``RSS / (n - D - 1)``).
    """
    A = _design(x)
    N, P = A.shape
    penalty = np.full(P, ridge)
    penalty[-1] = 0.0
    gram = A.T @ A + np.diag(penalty)
    gram_inv = np.linalg.pinv(gram, hermitian=True)
    theta = gram_inv @ (A.T @ y)
    resid = y - A @ theta
    dof = float(np.sum(gram_inv * (A.T @ A)))  # tr H = tr(A G⁻¹ Aᵀ) = tr(G⁻¹ AᵀA)
    return theta, float(resid @ resid) / max(N - dof, 1.0)


@dataclass(frozen=True)
class LinearEnsemble:
    """Fitted linear members: ``thetas`` (K, D+1), ``sigma2`` (K,), main ``theta`` (D+1,)."""

    thetas: np.ndarray
    sigma2: np.ndarray
    theta: np.ndarray
    sigma2_main: float

    @classmethod
    def fit(
        cls, x: np.ndarray, y: np.ndarray, config: EnsembleConfig, rng: np.random.Generator
    ) -> LinearEnsemble:
        theta, s2 = fit_ridge(x, y, config.ridge)
        fits = [
            fit_ridge(x[i], y[i], config.ridge)
            for i in bootstrap_indices(len(y), config.n_members, rng)
        ]
        return cls(
            thetas=np.stack([t for t, _ in fits]),
            sigma2=np.array([s for _, s in fits]),
            theta=theta,
            sigma2_main=s2,
        )

    def member_means(self, x: np.ndarray) -> np.ndarray:
        return self.thetas @ _design(np.asarray(x, dtype=np.float64)).T

    def main_mean(self, x: np.ndarray) -> np.ndarray:
        return _design(np.asarray(x, dtype=np.float64)) @ self.theta

    def predict(self, x: np.ndarray) -> Predictive:
        A = _design(np.asarray(x, dtype=np.float64))  # (N, D+1)
        mean = self.thetas @ A.T  # (K, N)
        var = np.broadcast_to(self.sigma2[:, None], mean.shape).copy()
        return Predictive(mean=mean, var=var, f=A @ self.theta, grad_sq=(A**2).sum(axis=1))


def _gp_kernel(n_features: int):

    return ConstantKernel(1.0, (1e-3, 1e3)) * RBF(np.ones(n_features), (1e-2, 1e5)) + WhiteKernel(
        0.1, (1e-6, 1e1)
    )


def _gp_noise(gp) -> float:
    """Learnt white-noise variance of a fitted GP, in target units (sklearn normalises y)."""
    noise = gp.kernel_.k2.noise_level
    return float(noise * gp._y_train_std**2) if gp.normalize_y else float(noise)


@dataclass(frozen=True)
class GPEnsemble:
    """Fitted GP members (``members``: list of fitted ``GaussianProcessRegressor``) and ``main``."""

    members: tuple
    main: object
    noise_in_variance: bool

    @classmethod
    def fit(
        cls, x: np.ndarray, y: np.ndarray, config: EnsembleConfig, rng: np.random.Generator
    ) -> GPEnsemble:
        seed = int(rng.integers(2**31 - 1))
        with warnings.catch_warnings():  # length scales at their bounds are expected here
            warnings.simplefilter("ignore", ConvergenceWarning)
            main = GaussianProcessRegressor(
                _gp_kernel(x.shape[1]), normalize_y=True, random_state=seed
            ).fit(x, y)
        members = []
        for idx in bootstrap_indices(len(y), config.n_members, rng):
            gp = GaussianProcessRegressor(main.kernel_, normalize_y=True, optimizer=None)
            members.append(gp.fit(x[idx], y[idx]))
        return cls(members=tuple(members), main=main, noise_in_variance=config.gp_noise_in_variance)

    def member_means(self, x: np.ndarray) -> np.ndarray:
        return np.stack([gp.predict(np.asarray(x, dtype=np.float64)) for gp in self.members])

    def main_mean(self, x: np.ndarray) -> np.ndarray:
        return self.main.predict(np.asarray(x, dtype=np.float64))

    def predict(self, x: np.ndarray) -> Predictive:
        x = np.asarray(x, dtype=np.float64)
        mean, var = [], []
        for gp in self.members:
            mu, std = gp.predict(x, return_std=True)
            v = std**2 if self.noise_in_variance else np.maximum(std**2 - _gp_noise(gp), 0.0)
            mean.append(mu)
            var.append(v)
        f = self.main.predict(x)
        return Predictive(mean=np.stack(mean), var=np.stack(var), f=f, grad_sq=np.ones(len(f)))


def fit_ensemble(
    x_labelled: np.ndarray, y_labelled: np.ndarray, config: EnsembleConfig, seed: int
) -> FittedEnsemble:
    """Fit the family's K bootstrap members and main model; randomness only from ``seed``."""
    x = np.asarray(x_labelled, dtype=np.float64)
    y = np.asarray(y_labelled, dtype=np.float64)
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ValueError(f"x_labelled must be (L, D) and y_labelled (L,), got {x.shape}, {y.shape}")
    if len(y) < 2:
        raise ValueError(f"need at least 2 labelled rows to fit an ensemble, got {len(y)}")
    rng = np.random.default_rng(seed)
    if config.family == "linear":
        return LinearEnsemble.fit(x, y, config, rng)
    if config.family == "gp":
        return GPEnsemble.fit(x, y, config, rng)
    return MLPEnsemble.fit(x, y, config, rng)
