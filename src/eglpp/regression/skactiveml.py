"""EGL for regression (Eq. 7/10) and predictive variance (Eq. 11) as scikit-activeml strategies.

A scikit-activeml user swaps Cai et al.'s expected model change for the paper's EGL by one line::

    qs = ExpectedModelChangeMaximization(bootstrap_size=10, feature_map=intercept_map)
    qs = ExpectedGradientLength(bootstrap_size=10, feature_map=intercept_map)  # instead
    query_idx = qs.query(X, y, reg, batch_size=5)

Both fit ``bootstrap_size`` clones of ``reg`` on bootstraps and score a candidate by how far the
members' predictions μ_k(x) lie from the model's own f(x), times the gradient factor
‖φ(x)‖ = ‖``feature_map(x)``‖. They differ where the paper says (``shared/paper/EQUATIONS.md``):

- EMC (Eq. 2): ``(1/K) Σ_k |μ_k(x) - f(x)| · ‖φ(x)‖``;
- EGL (Eq. 7/10): ``‖φ(x)‖² Σ_k [σ_k²(x) + (μ_k(x) - f(x))²]``: the squared gradient norm
  averaged over each member's Gaussian N(μ_k, σ_k²), so aleatoric noise counts too;
- EGL bootstraps the labelled rows only (``n_train`` of them, with replacement); scikit-activeml's
  EMC draws its bootstrap rows from all of ``X`` and lets the regressor drop the unlabelled ones.

``PredictiveVariance`` is Eq. 11, mean σ_k² + variance of μ_k; when f is the members' mean,
EGL = K · ‖φ‖² · predictive variance. scikit-activeml's ``QueryByCommittee`` on regressors
scores the standard deviation of the member means: the square root of Eq. 11's epistemic part.

``diverse=True`` builds a batch as Cai, Zhang & Zhang (2017) do, by simulating the sequential
policy: pick the best, condition the members on it (the Kalman update of
:mod:`eglpp.regression.batch`), score again; each row of the returned utilities is one step.

Examples
--------
>>> from skactiveml.regressor import SklearnRegressor
>>> from sklearn.linear_model import Ridge
>>> X = np.arange(8.0)[:, None]
>>> y = np.array([0.1, 1.2, 1.9, 3.2, np.nan, np.nan, np.nan, np.nan])
>>> qs = ExpectedGradientLength(bootstrap_size=5, feature_map=intercept_map, random_state=0)
>>> qs.query(X, y, SklearnRegressor(Ridge(alpha=1e-3)))
array([7])

References
----------
Shukla, M. "Bayesian Uncertainty and Expected Gradient Length - Regression: Two Sides of the
Same Coin?" WACV 2022. Cai, W., Zhang, Y., Zhou, J. "Maximizing expected model change for
active learning in regression." ICDM 2013. Cai, W., Zhang, M., Zhang, Y. "Batch mode active
learning for regression with expected model change." IEEE TNNLS 2017.
"""

from __future__ import annotations

import numpy as np
from skactiveml.base import SingleAnnotatorPoolQueryStrategy
from skactiveml.utils import (
    MISSING_LABEL,
    check_equal_missing_label,
    check_scalar,
    check_type,
    is_labeled,
    rand_argmax,
    simple_batch,
)
from sklearn.base import clone
from sklearn.utils.validation import check_array, check_consistent_length

from eglpp.regression.skactiveml_members import (
    bootstrap_samples,
    check_gaussian_regressor,
    fit_members,
    member_predictive,
    takes_weights,
)
from eglpp.regression.strategies import egl, predictive_variance

__all__ = [
    "ExpectedGradientLength",
    "PredictiveVariance",
    "diverse_batch",
    "intercept_map",
    "unit_map",
]


def intercept_map(X: np.ndarray) -> np.ndarray:
    """φ(x) = [x, 1]: the parameter gradient of a linear model with intercept (eglpp's linear)."""
    return np.hstack([X, np.ones((len(X), 1))])


def unit_map(X: np.ndarray) -> np.ndarray:
    """φ(x) = [1]: gradient factor 1, eglpp's choice for a GP (the score is then Eq. 10's sum)."""
    return np.ones((len(X), 1))


def diverse_batch(score, mean, var, batch_size, random_state) -> tuple[np.ndarray, np.ndarray]:
    """Greedy batch by simulated labelling: ``(picks (B,), utilities (B, U))``.

    ``score(mean) -> (U,)`` scores the candidates from (K, U) member means. After each pick j the
    centred means ``D = μ - μ̄`` are conditioned on a label at j with noise ``r_j = mean_k σ_k²``:
    ``D ← D - γ û (ûᵀ D)``, ``û = D[:, j] / ‖D[:, j]‖``, ``β = C_jj / (C_jj + r_j)``,
    ``γ = 1 - √(1 - β)``, ``C_jj = ‖D[:, j]‖² / K``, as in
    :func:`eglpp.regression.batch.conditioned_batch`.
    Row b of ``utilities`` is the score used for pick b, NaN where already picked.
    """
    K, U = mean.shape
    centre = mean.mean(axis=0)
    D = mean - centre
    noise = var.mean(axis=0)
    utilities = np.empty((batch_size, U))
    picks = np.empty(batch_size, dtype=int)
    for b in range(batch_size):
        utilities[b] = score(centre + D)
        utilities[b, picks[:b]] = np.nan
        j = picks[b] = int(rand_argmax(utilities[b], random_state=random_state)[0])
        u = D[:, j].copy()
        c_jj = float(u @ u) / K
        if c_jj <= 0:
            continue
        gamma = 1.0 - np.sqrt(max(1.0 - c_jj / (c_jj + noise[j]), 0.0))
        u_hat = u / np.sqrt(K * c_jj)
        D -= gamma * np.outer(u_hat, u_hat @ D)
    return picks, utilities


class _BootstrapGaussian(SingleAnnotatorPoolQueryStrategy):
    """Shared checks and plumbing; subclasses hold the score."""

    def _validate_params(self) -> None:
        check_scalar(self.bootstrap_size, "bootstrap_size", int, min_val=1)
        if isinstance(self.n_train, bool) or not isinstance(self.n_train, (int, float)):
            raise TypeError(f"`n_train` must be an int or a float, got {type(self.n_train)}")
        if isinstance(self.n_train, int) and self.n_train < 1:
            raise ValueError(f"`n_train`={self.n_train} must be at least 1 when an int")
        if isinstance(self.n_train, float) and not 0.0 < self.n_train <= 1.0:
            raise ValueError(f"`n_train`={self.n_train} must be in (0, 1] when a float")
        check_type(self.diverse, "diverse", bool)

    def _members(self, X, y, reg, sample_weight, X_cand) -> tuple[np.ndarray, np.ndarray]:
        """(K, n_candidates) member means and variances on ``X_cand``."""
        lab = is_labeled(y, missing_label=self.missing_label_)
        X_lab, y_lab = X[lab], y[lab].astype(np.float64)
        w_lab = None if sample_weight is None else sample_weight[lab]
        samples = bootstrap_samples(
            len(y_lab), self.bootstrap_size, self.n_train, self.random_state_
        )
        members = fit_members(reg, X_lab, y_lab, w_lab, samples)
        pairs = [
            member_predictive(m, X_cand, X_lab[i], y_lab[i], None if w_lab is None else w_lab[i])
            for m, i in zip(members, samples, strict=True)
        ]
        return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])

    def _select(self, score, mean, var, mapping, n_samples, batch_size, return_utilities):
        if not self.diverse:
            utilities = score(mean)
            if mapping is not None:
                utilities = _to_samples(utilities[None], mapping, n_samples)[0]
            return simple_batch(
                utilities,
                self.random_state_,
                batch_size=batch_size,
                return_utilities=return_utilities,
            )
        picks, utilities = diverse_batch(score, mean, var, batch_size, self.random_state_)
        if mapping is not None:
            picks, utilities = mapping[picks], _to_samples(utilities, mapping, n_samples)
        return (picks, utilities) if return_utilities else picks


def _to_samples(utilities: np.ndarray, mapping: np.ndarray, n_samples: int) -> np.ndarray:
    out = np.full((len(utilities), n_samples), np.nan)
    out[:, mapping] = utilities
    return out


def _check_reg(reg, missing_label) -> None:
    check_gaussian_regressor(reg)
    check_equal_missing_label(reg.missing_label, missing_label)


def _check_sample_weight(sample_weight, y, reg):
    """``sample_weight`` checked; None for unit weights to a ``reg`` whose fit takes none (the
    same fit); a ValueError for other weights to such a ``reg``."""
    if sample_weight is None:
        return None
    sample_weight = check_array(sample_weight, ensure_2d=False, dtype=np.float64)
    check_consistent_length(y, sample_weight)
    if takes_weights(reg):
        return sample_weight
    if np.all(sample_weight == 1.0):
        return None
    raise ValueError(
        f"`sample_weight`: `reg` ({reg!r:.80}) is fitted without weights (its fit takes no "
        "sample_weight); pass None or unit weights, or a regressor whose fit takes them "
        "(SklearnRegressor(Ridge()), NICKernelRegressor())"
    )


_QUERY_DOC = """
        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data set, usually complete, i.e., including the labeled and unlabeled
            samples.
        y : array-like of shape (n_samples,)
            Labels of the training data set (unlabeled ones are `self.missing_label`).
        reg : SkactivemlRegressor
            The regressor whose clones are fitted on bootstraps of the labeled samples; see
            :func:`eglpp.regression.skactiveml_members.check_gaussian_regressor` for which.{fit}
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of training samples in `X`.
        candidates : None or array-like of shape (n_candidates,), dtype=int or \
                array-like of shape (n_candidates, n_features), default=None
            None: the unlabeled samples of `(X, y)`; indices into `X`; or candidate samples.
        batch_size : int, default=1
            The number of samples to be selected in one AL cycle.
        return_utilities : bool, default=False
            If true, also return the utilities based on the query strategy.

        Returns
        -------
        query_indices : numpy.ndarray of shape (batch_size,)
            Indices into `X`, or into `candidates` when samples are given.
        utilities : numpy.ndarray of shape (batch_size, n_samples) or (batch_size, n_candidates)
            The utilities used for each pick of the batch; NaN for labeled samples, samples that
            are not candidates and samples picked earlier in the batch.
"""


class ExpectedGradientLength(_BootstrapGaussian):
    """Expected gradient length for regression (EGL, Eq. 7 / Eq. 10).

    .. math::
        u(x) = \\|\\varphi(x)\\|^2
            \\sum_{k=1}^{K} \\left[\\sigma_k^2(x) + (\\mu_k(x) - f(x))^2\\right]

    with ``f`` the regressor fitted on the labeled samples and ``N(μ_k, σ_k²)`` the Gaussian
    predictive of K clones of it fitted on bootstraps of the labeled samples
    (:mod:`eglpp.regression.skactiveml_members`). The utilities are
    :func:`eglpp.regression.strategies.egl` of those arrays.

    Parameters
    ----------
    bootstrap_size : int, default=10
        The number K of bootstrap members.
    n_train : int or float, default=1.0
        Rows per bootstrap, drawn with replacement from the labeled samples: a count if int
        (>= 1), a fraction of the labeled samples if float in (0, 1].
    feature_map : callable or None, default=None
        ``φ``: maps candidates (n, n_features) to (n, n_params) whose row norm is the
        gradient length ‖∇_θ f(x)‖ (as in scikit-activeml's EMC). None is the identity;
        :func:`intercept_map` is a linear model with intercept; :func:`unit_map` gives 1.
        The norm is the squared Euclidean one of Eq. 5 (EMC's `ord` has no counterpart).
    diverse : bool, default=False
        If True, a batch is built by simulating the sequential policy (:func:`diverse_batch`)
        instead of taking the `batch_size` best utilities.
    missing_label : scalar or string or np.nan or None, default=np.nan
        Value to represent a missing label.
    random_state : int or np.random.RandomState or None, default=None
        Random state for the bootstraps and for breaking ties.
    """

    def __init__(
        self,
        bootstrap_size=10,
        n_train=1.0,
        feature_map=None,
        diverse=False,
        missing_label=MISSING_LABEL,
        random_state=None,
    ):
        super().__init__(missing_label=missing_label, random_state=random_state)
        self.bootstrap_size = bootstrap_size
        self.n_train = n_train
        self.feature_map = feature_map
        self.diverse = diverse

    def query(
        self,
        X,
        y,
        reg,
        fit_reg=True,
        sample_weight=None,
        candidates=None,
        batch_size=1,
        return_utilities=False,
    ):
        X, y, candidates, batch_size, return_utilities = self._validate_data(
            X, y, candidates, batch_size, return_utilities, reset=True
        )
        self._validate_params()
        if self.feature_map is not None and not callable(self.feature_map):
            raise TypeError(f"`feature_map` must be callable or None, got {type(self.feature_map)}")
        _check_reg(reg, self.missing_label_)
        check_type(fit_reg, "fit_reg", bool)
        sample_weight = _check_sample_weight(sample_weight, y, reg)

        if fit_reg:
            weights = {} if sample_weight is None else {"sample_weight": sample_weight}
            reg = clone(reg).fit(X, y, **weights)
        X_cand, mapping = self._transform_candidates(candidates, X, y)
        mean, var = self._members(X, y, reg, sample_weight, X_cand)
        f = np.asarray(reg.predict(X_cand), dtype=np.float64)
        phi = X_cand if self.feature_map is None else np.asarray(self.feature_map(X_cand))
        if phi.ndim != 2 or len(phi) != len(X_cand):
            raise ValueError(
                f"`feature_map` must return (n_candidates, n_params) = ({len(X_cand)}, ...), "
                f"got shape {phi.shape}"
            )
        grad_sq = (phi.astype(np.float64) ** 2).sum(axis=1)
        return self._select(
            lambda m: egl(grad_sq, m, var, f),
            mean,
            var,
            mapping,
            len(X),
            batch_size,
            return_utilities,
        )

    query.__doc__ = "Determines for which candidate samples labels are to be queried.\n" + (
        _QUERY_DOC.format(
            fit="\n        fit_reg : bool, default=True\n            Whether `reg` is to be "
            "fitted on `X`, `y` and `sample_weight` (else it is the fitted f)."
        )
    )


class PredictiveVariance(_BootstrapGaussian):
    """Bayesian predictive variance of a bootstrap ensemble (Eq. 11): aleatoric + epistemic.

    .. math::
        u(x) = \\frac{1}{K}\\sum_k \\sigma_k^2(x) + \\frac{1}{K}\\sum_k \\mu_k(x)^2
            - \\Big(\\frac{1}{K}\\sum_k \\mu_k(x)\\Big)^2

    over K clones of `reg` fitted on bootstraps of the labeled samples
    (:func:`eglpp.regression.strategies.predictive_variance`). `reg` itself is only the
    template of the members, so `query` has no `fit_reg`.

    Parameters
    ----------
    bootstrap_size, n_train, diverse, missing_label, random_state
        As in :class:`ExpectedGradientLength`.
    """

    def __init__(
        self,
        bootstrap_size=10,
        n_train=1.0,
        diverse=False,
        missing_label=MISSING_LABEL,
        random_state=None,
    ):
        super().__init__(missing_label=missing_label, random_state=random_state)
        self.bootstrap_size = bootstrap_size
        self.n_train = n_train
        self.diverse = diverse

    def query(
        self,
        X,
        y,
        reg,
        sample_weight=None,
        candidates=None,
        batch_size=1,
        return_utilities=False,
    ):
        X, y, candidates, batch_size, return_utilities = self._validate_data(
            X, y, candidates, batch_size, return_utilities, reset=True
        )
        self._validate_params()
        _check_reg(reg, self.missing_label_)
        sample_weight = _check_sample_weight(sample_weight, y, reg)

        X_cand, mapping = self._transform_candidates(candidates, X, y)
        mean, var = self._members(X, y, reg, sample_weight, X_cand)
        return self._select(
            lambda m: predictive_variance(m, var),
            mean,
            var,
            mapping,
            len(X),
            batch_size,
            return_utilities,
        )

    query.__doc__ = "Determines for which candidate samples labels are to be queried.\n" + (
        _QUERY_DOC.format(fit="")
    )
