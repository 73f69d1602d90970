"""EGL and predictive variance through scikit-activeml against oracles: a hand-worked case,
scikit-activeml's own EMC and QBC on the same members, eglpp's ``egl`` / ``conditioned_batch``
on the same bootstraps, numpy least squares, and the algebra of Eq. 11."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm
from skactiveml.base import ProbabilisticRegressor
from skactiveml.pool import ExpectedModelChangeMaximization, QueryByCommittee
from skactiveml.pool import _expected_model_change_maximization as emc_module
from skactiveml.regressor import SklearnNormalRegressor, SklearnRegressor
from skactiveml.utils import MISSING_LABEL
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
from sklearn.linear_model import LinearRegression, Ridge

import eglpp.regression.skactiveml as skal
from eglpp.regression.batch import conditioned_batch
from eglpp.regression.ensembles import GPEnsemble, LinearEnsemble, fit_ridge
from eglpp.regression.skactiveml import (
    ExpectedGradientLength,
    PredictiveVariance,
    intercept_map,
    unit_map,
)
from eglpp.regression.skactiveml_members import bootstrap_samples, residual_variance
from eglpp.regression.strategies import egl


def _pool(n_labelled: int, n_unlabelled: int, d: int, seed: int):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_labelled + n_unlabelled, d))
    y = X @ rng.normal(size=d) + 0.5 + 0.6 * rng.normal(size=len(X))
    y[n_labelled:] = MISSING_LABEL
    return X, y, np.arange(n_labelled, len(X))


@pytest.fixture
def spy(monkeypatch):
    """Records the bootstrap samples and fitted members of every query."""
    seen = {"samples": [], "members": []}
    draw, fit = skal.bootstrap_samples, skal.fit_members

    def draw_spy(*args):
        seen["samples"].append(draw(*args))
        return seen["samples"][-1]

    def fit_spy(*args):
        seen["members"].append(fit(*args))
        return seen["members"][-1]

    monkeypatch.setattr(skal, "bootstrap_samples", draw_spy)
    monkeypatch.setattr(skal, "fit_members", fit_spy)
    return seen


def _emc_on(members, monkeypatch, X, y, reg, **query):
    """scikit-activeml's EMC utilities with ``members`` in place of its own bootstraps."""
    monkeypatch.setattr(emc_module, "_bootstrap_estimators", lambda *a, **k: members)
    qs = ExpectedModelChangeMaximization(bootstrap_size=len(members), feature_map=intercept_map)
    return qs.query(X, y, reg, return_utilities=True, **query)[1][0]


def test_hand_worked_case_against_emc(monkeypatch, spy):
    """Eq. 7 and Eq. 2 on three fixed bootstrap samples of three points, worked by hand.

    Labelled (x, y): (0, 0), (1, 1), (2, 3). Least squares on all: f(x) = 1.5 x - 1/6.
    Samples A = rows {0, 1}: μ_A = x; B = {1, 2}: μ_B = 2x - 1 (both exact, σ² = 0);
    C = {0, 1, 2}: μ_C = f, residuals (1/6, -1/3, 1/6), σ_C² = (1/6) / (3 - 2) = 1/6.
    x = 3: f = 13/3, d = (-4/3, 2/3, 0), ‖[x, 1]‖² = 10:
        EGL = 10 (16/9 + 4/9 + 1/6) = 215/9,  EMC = √10 (4/3 + 2/3 + 0) / 3 = 2√10 / 3.
    x = 4: f = 35/6, d = (-11/6, 7/6, 0), ‖[x, 1]‖² = 17:
        EGL = 17 (121/36 + 49/36 + 1/6) = 748/9,  EMC = √17 (11/6 + 7/6) / 3 = √17.
    EGL squares and sums what EMC averages unsquared, and adds σ_k²: here
    EGL - ‖φ‖² Σσ² = ‖φ‖² Σ d² while EMC = ‖φ‖ mean |d|.
    """
    X = np.array([[0.0], [1.0], [2.0], [3.0], [4.0]])
    y = np.array([0.0, 1.0, 3.0, MISSING_LABEL, MISSING_LABEL])
    fixed = [np.array([0, 1]), np.array([1, 2]), np.array([0, 1, 2])]
    monkeypatch.setattr(skal, "bootstrap_samples", lambda *a: fixed)  # members still recorded
    reg = SklearnRegressor(LinearRegression())
    qs = ExpectedGradientLength(bootstrap_size=3, feature_map=intercept_map, random_state=0)
    _, u_egl = qs.query(X, y, reg, return_utilities=True)
    np.testing.assert_allclose(u_egl[0, 3:], [215 / 9, 748 / 9], rtol=1e-10)
    assert np.isnan(u_egl[0, :3]).all()
    u_emc = _emc_on(spy["members"][-1], monkeypatch, X, y, reg)
    np.testing.assert_allclose(u_emc[3:], [2 * np.sqrt(10) / 3, np.sqrt(17)], rtol=1e-10)
    _, u_pv = PredictiveVariance(bootstrap_size=3, random_state=0).query(
        X, y, reg, return_utilities=True
    )
    # Eq. 11 by hand at x = 3: member means (3, 5, 13/3), variances (0, 0, 1/6)
    means = np.array([3.0, 5.0, 13 / 3])
    assert u_pv[0, 3] == pytest.approx(1 / 18 + means.var(), rel=1e-10)


def test_one_member_egl_is_emc_squared_plus_noise(monkeypatch, spy):
    """K = 1: EGL = EMC² + ‖φ‖² σ², σ² the member's unbiased residual variance (numpy lstsq)."""
    X, y, cand = _pool(15, 20, 3, 0)
    reg = SklearnRegressor(LinearRegression())
    qs = ExpectedGradientLength(bootstrap_size=1, feature_map=intercept_map, random_state=3)
    _, u_egl = qs.query(X, y, reg, return_utilities=True)
    (member,) = spy["members"][-1]
    (rows,) = spy["samples"][-1]
    A = intercept_map(X[rows])
    theta, rss, rank, _ = np.linalg.lstsq(A, y[rows], rcond=None)
    assert rank == 4
    sigma2 = float(rss[0]) / (len(rows) - 4)
    u_emc = _emc_on([member], monkeypatch, X, y, reg)
    grad_sq = (intercept_map(X[cand]) ** 2).sum(1)
    np.testing.assert_allclose(u_egl[0, cand], u_emc[cand] ** 2 + grad_sq * sigma2, rtol=1e-8)


def test_utilities_equal_eglpp_egl_on_the_same_linear_members(spy):
    """Ridge members: the utilities are eglpp's egl of its LinearEnsemble on the same samples."""
    X, y, cand = _pool(25, 30, 4, 1)
    reg = SklearnRegressor(Ridge(alpha=1e-3))
    qs = ExpectedGradientLength(bootstrap_size=6, feature_map=intercept_map, random_state=5)
    _, u = qs.query(X, y, reg, return_utilities=True)
    samples = spy["samples"][-1]
    assert samples.shape == (6, 25) and samples.max() < 25  # labelled rows only
    Xl, yl = X[:25], y[:25]
    fits = [fit_ridge(Xl[i], yl[i], 1e-3) for i in samples]
    theta, s2 = fit_ridge(Xl, yl, 1e-3)
    ens = LinearEnsemble(np.stack([t for t, _ in fits]), np.array([s for _, s in fits]), theta, s2)
    p = ens.predict(X[cand])
    np.testing.assert_allclose(u[0, cand], egl(p.grad_sq, p.mean, p.var, p.f), rtol=1e-7)


def test_utilities_equal_eglpp_egl_on_the_same_gp_members(spy):
    """GP members (fixed kernel with white noise): eglpp's GPEnsemble on the same samples."""
    X, y, cand = _pool(20, 15, 2, 2)
    kernel = ConstantKernel(2.0) * RBF([1.0, 1.5]) + WhiteKernel(0.3)
    gp = GaussianProcessRegressor(kernel, normalize_y=True, optimizer=None)
    qs = ExpectedGradientLength(bootstrap_size=4, feature_map=unit_map, random_state=6)
    _, u = qs.query(X, y, SklearnNormalRegressor(gp), return_utilities=True)
    Xl, yl = X[:20], y[:20]
    members = []
    for rows, member in zip(spy["samples"][-1], spy["members"][-1], strict=True):
        members.append(GaussianProcessRegressor(kernel, normalize_y=True, optimizer=None))
        members[-1].fit(Xl[rows], yl[rows])
        np.testing.assert_array_equal(member.estimator_.X_train_, Xl[rows])
    main = GaussianProcessRegressor(kernel, normalize_y=True, optimizer=None).fit(Xl, yl)
    p = GPEnsemble(tuple(members), main, noise_in_variance=True).predict(X[cand])
    np.testing.assert_allclose(u[0, cand], egl(p.grad_sq, p.mean, p.var, p.f), rtol=1e-8)


class _Gaussian(ProbabilisticRegressor):
    """A fixed N(loc(x), scale(x)²); fitting does nothing."""

    def __init__(self, loc=None, scale=None, missing_label=MISSING_LABEL, random_state=None):
        super().__init__(missing_label=missing_label, random_state=random_state)
        self.loc = loc
        self.scale = scale

    def fit(self, X, y, sample_weight=None):
        return self

    def predict_target_distribution(self, X):
        return norm(loc=self.loc(X), scale=self.scale(X))


def test_egl_is_k_gradient_times_predictive_variance_when_f_is_the_mean(monkeypatch):
    """Eq. 11: a fixed set of K members, f their mean ⇒ EGL = K · ‖∇f‖² · predictive variance."""
    X, y, cand = _pool(10, 25, 3, 3)
    rng = np.random.default_rng(4)
    W, s = rng.normal(size=(5, 3)), rng.gamma(2.0, size=(5, 3))
    members = [
        _Gaussian(lambda z, k=k: z @ W[k], lambda z, k=k: 0.2 + np.abs(z @ s[k])) for k in range(5)
    ]
    main = _Gaussian(lambda z: z @ W.mean(0), lambda z: np.ones(len(z)))
    monkeypatch.setattr(skal, "fit_members", lambda *a: members)
    qs_egl = ExpectedGradientLength(bootstrap_size=5, feature_map=intercept_map, random_state=0)
    _, u_egl = qs_egl.query(X, y, main, fit_reg=False, return_utilities=True)
    _, u_pv = PredictiveVariance(bootstrap_size=5, random_state=0).query(
        X, y, main, return_utilities=True
    )
    grad_sq = (intercept_map(X[cand]) ** 2).sum(1)
    np.testing.assert_allclose(u_egl[0, cand], 5 * grad_sq * u_pv[0, cand], rtol=1e-12)
    # and Eq. 11 itself: mean σ² + variance of the means, from the members directly
    mu = np.stack([m.loc(X[cand]) for m in members])
    var = np.stack([m.scale(X[cand]) ** 2 for m in members])
    np.testing.assert_allclose(u_pv[0, cand], var.mean(0) + mu.var(0), rtol=1e-12)


def test_egl_is_variance_plus_bias_on_real_bootstraps(spy):
    """Same seed ⇒ same bootstraps in both; EGL = K ‖φ‖² (Eq. 11 + (μ̄ - f)²) for any f."""
    X, y, cand = _pool(20, 20, 3, 5)
    reg = SklearnRegressor(Ridge(alpha=1e-2))
    _, u_egl = ExpectedGradientLength(
        bootstrap_size=7, feature_map=intercept_map, random_state=9
    ).query(X, y, reg, return_utilities=True)
    _, u_pv = PredictiveVariance(bootstrap_size=7, random_state=9).query(
        X, y, reg, return_utilities=True
    )
    np.testing.assert_array_equal(spy["samples"][0], spy["samples"][1])
    mu_bar = np.mean([m.predict(X[cand]) for m in spy["members"][0]], axis=0)
    f = SklearnRegressor(Ridge(alpha=1e-2)).fit(X, y).predict(X[cand])
    grad_sq = (intercept_map(X[cand]) ** 2).sum(1)
    expected = 7 * grad_sq * (u_pv[0, cand] + (mu_bar - f) ** 2)
    np.testing.assert_allclose(u_egl[0, cand], expected, rtol=1e-9)


def test_qbc_is_the_square_root_of_the_epistemic_part(spy):
    """scikit-activeml's QBC on regressors (std of member means) = √(Eq. 11 - mean σ²)."""
    X, y, cand = _pool(18, 22, 2, 6)
    reg = SklearnRegressor(LinearRegression())
    _, u_pv = PredictiveVariance(bootstrap_size=6, random_state=2).query(
        X, y, reg, return_utilities=True
    )
    members, samples = spy["members"][-1], spy["samples"][-1]
    noise = np.mean(
        [residual_variance(m.estimator_, X[i], y[i]) for m, i in zip(members, samples, strict=True)]
    )
    _, u_qbc = QueryByCommittee().query(X, y, members, fit_ensemble=False, return_utilities=True)
    np.testing.assert_allclose(u_pv[0, cand] - noise, u_qbc[0, cand] ** 2, rtol=1e-8)


@pytest.mark.parametrize(
    "cls, kind", [(ExpectedGradientLength, "egl"), (PredictiveVariance, "variance")]
)
def test_diverse_batch_equals_eglpp_conditioned_batch(cls, kind, spy):
    """``diverse=True`` picks what eglpp's conditioned_batch picks on the same members."""
    X, y, cand = _pool(20, 40, 3, 7)
    reg = SklearnRegressor(Ridge(alpha=1e-3))
    extra = {"feature_map": intercept_map} if cls is ExpectedGradientLength else {}
    qs = cls(bootstrap_size=8, diverse=True, random_state=4, **extra)
    picks, u = qs.query(X, y, reg, batch_size=6, return_utilities=True)
    Xl, yl = X[:20], y[:20]
    fits = [fit_ridge(Xl[i], yl[i], 1e-3) for i in spy["samples"][-1]]
    theta, s2 = fit_ridge(Xl, yl, 1e-3)
    ens = LinearEnsemble(np.stack([t for t, _ in fits]), np.array([s for _, s in fits]), theta, s2)
    p = ens.predict(X[cand])
    theirs = conditioned_batch(
        p.grad_sq, p.mean, p.var, p.f, 6, np.random.default_rng(0), kind=kind
    )
    np.testing.assert_array_equal(picks, cand[theirs])
    top_picks, u_top = cls(bootstrap_size=8, random_state=4, **extra).query(
        X, y, reg, batch_size=6, return_utilities=True
    )
    np.testing.assert_allclose(u[0], u_top[0])  # the first step is the plain score
    assert picks[0] == top_picks[0]
    both = ~np.isnan(u[1:]) & ~np.isnan(u_top[1:])
    assert (u[1:][both] <= u_top[1:][both] + 1e-12).all()  # simulated labels only shrink spread
    assert not np.allclose(u[1], u_top[1], equal_nan=True)  # and step 1 was re-scored


def test_residual_variance_weights_are_row_counts():
    """Integer sample weights = repeated rows (Ridge and LinearRegression, with and without
    intercept); unit weights with LinearRegression = the unbiased RSS / (n - D - 1)."""
    rng = np.random.default_rng(8)
    X, y = rng.normal(size=(12, 3)), rng.normal(size=12)
    counts = rng.integers(1, 4, size=12)
    rows = np.repeat(np.arange(12), counts)
    for est in (Ridge(alpha=0.7), LinearRegression(), Ridge(alpha=0.3, fit_intercept=False)):
        weighted = residual_variance(est.fit(X, y, counts), X, y, counts)
        repeated = residual_variance(est.fit(X[rows], y[rows]), X[rows], y[rows])
        assert weighted == pytest.approx(repeated, rel=1e-9)
    lr = LinearRegression().fit(X, y)
    rss = float(((y - lr.predict(X)) ** 2).sum())
    assert residual_variance(lr, X, y) == pytest.approx(rss / (12 - 4), rel=1e-10)


def test_bootstrap_sample_sizes():
    rs = np.random.RandomState(0)
    assert bootstrap_samples(10, 4, 1.0, rs).shape == (4, 10)
    assert bootstrap_samples(10, 4, 0.25, rs).shape == (4, 3)  # ceil(2.5)
    assert bootstrap_samples(10, 2, 25, rs).shape == (2, 25)
    assert bootstrap_samples(0, 3, 1.0, rs).shape == (3, 0)
    draws = bootstrap_samples(5, 200, 1.0, rs)
    assert set(np.unique(draws)) == set(range(5))
