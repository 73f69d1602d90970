"""Bootstrap members of a scikit-activeml regressor and their Gaussian predictive.

The strategies of :mod:`eglpp.regression.skactiveml` need, on the candidates, what eglpp's own
ensembles give (:class:`eglpp.regression.ensembles.Predictive`): the means μ_k(x) and variances
σ_k²(x) of K members fitted on bootstraps of the labelled rows, ``p(y | x, θ_k) = N(μ_k, σ_k²)``
(Eq. 5). A member's Gaussian comes from the regressor it is a clone of:

- a ``ProbabilisticRegressor`` (``SklearnNormalRegressor(GaussianProcessRegressor())``,
  ``NICKernelRegressor``, ...): its predicted mean and standard deviation;
- a ``SklearnRegressor`` of scikit-learn's ``LinearRegression`` or ``Ridge``: its prediction and
  its residual variance on its own bootstrap sample, ``RSS / max(n - tr H, 1)`` with ``H`` the
  hat matrix (eglpp's ``linear`` family, Eq. 6-7; see :func:`eglpp.regression.ensembles.fit_ridge`);
- a ``SklearnRegressor`` whose estimator's ``predict`` takes ``return_std``
  (``GaussianProcessRegressor``, ``BayesianRidge``, ``ARDRegression``): that mean and standard
  deviation (eglpp's ``gp`` family, Eq. 9).

Any other regressor has no Gaussian predictive here and is refused with ``TypeError``.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
from skactiveml.base import ProbabilisticRegressor, SkactivemlRegressor
from skactiveml.regressor import SklearnRegressor
from sklearn.base import clone
from sklearn.linear_model import LinearRegression, Ridge

__all__ = [
    "check_gaussian_regressor",
    "bootstrap_samples",
    "fit_members",
    "residual_variance",
    "member_predictive",
    "takes_weights",
]

_LINEAR = (LinearRegression, Ridge)


def _predicts_std(estimator) -> bool:
    return "return_std" in inspect.signature(estimator.predict).parameters


def takes_weights(reg) -> bool:
    """Whether ``reg.fit`` takes ``sample_weight`` (scikit-activeml's wrappers show their
    estimator's fit signature: ``SklearnRegressor(GaussianProcessRegressor())`` takes none)."""
    return "sample_weight" in inspect.signature(reg.fit).parameters


def check_gaussian_regressor(reg, name: str = "reg") -> None:
    """Raise ``TypeError`` unless ``reg``'s bootstrap members have a Gaussian predictive."""
    if not isinstance(reg, SkactivemlRegressor):
        raise TypeError(
            f"`{name}` must be a skactiveml.base.SkactivemlRegressor, got {type(reg).__name__}"
        )
    if isinstance(reg, ProbabilisticRegressor):
        return
    est = getattr(reg, "estimator", None)
    if isinstance(reg, SklearnRegressor) and (isinstance(est, _LINEAR) or _predicts_std(est)):
        return
    raise TypeError(
        f"`{name}` ({type(reg).__name__}) has no Gaussian predictive: give a "
        "ProbabilisticRegressor, or a SklearnRegressor of LinearRegression, Ridge or an "
        "estimator whose predict takes return_std (e.g. GaussianProcessRegressor)"
    )


def bootstrap_samples(
    n_labelled: int, bootstrap_size: int, n_train: int | float, random_state: np.random.RandomState
) -> np.ndarray:
    """(bootstrap_size, m) positions in the labelled rows, drawn with replacement.

    ``m = n_train`` for an int, ``ceil(n_train · n_labelled)`` for a float in (0, 1]
    (``n_train=1.0`` is the ordinary bootstrap). With no labelled rows, ``m = 0``.
    """
    m = n_train if isinstance(n_train, (int, np.integer)) else math.ceil(n_train * n_labelled)
    m = int(m) if n_labelled > 0 else 0
    return random_state.randint(0, max(n_labelled, 1), size=(bootstrap_size, m))


def fit_members(reg, X_labelled, y_labelled, w_labelled, samples) -> list:
    """One fitted clone of ``reg`` per bootstrap sample (a row of ``samples``)."""
    members = []
    for idx in samples:
        if w_labelled is None:  # some wrapped estimators' fit takes no sample_weight at all
            members.append(clone(reg).fit(X_labelled[idx], y_labelled[idx]))
        else:
            members.append(
                clone(reg).fit(X_labelled[idx], y_labelled[idx], sample_weight=w_labelled[idx])
            )
    return members


def residual_variance(estimator, X, y, sample_weight=None) -> float:
    """Residual variance of a fitted ``LinearRegression`` / ``Ridge`` on its training rows.

    ``Σ w r² / max(Σ w - tr H, 1)`` with ``tr H = tr((AᵀWA + P)⁻¹ AᵀWA)``, ``A = [X, 1]`` (or ``X``
    without intercept) and ``P`` the ridge penalty on the weights (not the intercept). With unit
    weights this is :func:`eglpp.regression.ensembles.fit_ridge`'s σ², for ``alpha = 0`` the
    unbiased ``RSS / (n - D - 1)``.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    resid = y - estimator.predict(X)
    A = np.hstack([X, np.ones((len(y), 1))]) if estimator.fit_intercept else X
    penalty = np.full(A.shape[1], float(getattr(estimator, "alpha", 0.0)))
    if estimator.fit_intercept:
        penalty[-1] = 0.0
    gram = A.T @ (w[:, None] * A)  # AᵀWA
    dof = float(np.sum(np.linalg.pinv(gram + np.diag(penalty), hermitian=True) * gram))
    return float(w @ resid**2) / max(float(w.sum()) - dof, 1.0)


def member_predictive(member, X, X_train, y_train, w_train=None) -> tuple[np.ndarray, np.ndarray]:
    """``(mean (N,), var (N,))`` of a fitted member on ``X``; ``*_train`` are its bootstrap rows.

    A linear member that could not be fitted (no rows) predicts scikit-activeml's fallback, the
    label mean, with variance 0 (no residuals).
    """
    if isinstance(member, ProbabilisticRegressor) or not isinstance(member.estimator, _LINEAR):
        mean, std = member.predict(X, return_std=True)
        return np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64) ** 2
    mean = np.asarray(member.predict(X), dtype=np.float64)
    s2 = (
        residual_variance(member.estimator_, X_train, y_train, w_train)
        if member.is_fitted_
        else 0.0
    )
    return mean, np.full(len(mean), s2)
