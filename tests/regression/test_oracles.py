"""The regression scores against oracles no one here wrote: Monte Carlo, scikit-learn,
scikit-activeml, an autograd loop, and the algebra of Eq. 11."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.gaussian_process import GaussianProcessRegressor
from torch.func import grad, vmap

from eglpp.regression.ensembles import EnsembleConfig, fit_ensemble
from eglpp.regression.mlp import forward, init_params, per_example_grad_sq
from eglpp.regression.strategies import egl, emcm, predictive_variance


def _data(n: int, d: int, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = x @ rng.normal(size=d) + 0.5 + rng.normal(scale=0.7, size=n)
    return x, y


def test_egl_equals_monte_carlo_of_eq6():
    """(a) Eq. 7 = Monte Carlo estimate of Eq. 6, y ~ N(θ_kᵀx, σ_k²) per member.

    The gradient of ℓ = (y - θ̂ᵀ[x,1])² is taken by torch autograd (vmap over samples), so the
    closed form is checked against the definition, not against itself.
    """
    x, y = _data(40, 3, 0)
    ens = fit_ensemble(x, y, EnsembleConfig("linear", n_members=6), seed=1)
    pool = np.random.default_rng(2).normal(size=(5, 3)) * 2
    p = ens.predict(pool)
    closed = 4.0 * egl(p.grad_sq, p.mean, p.var, p.f)  # Eq. 6 keeps the constant 4

    theta_hat = torch.as_tensor(ens.theta)
    design = torch.as_tensor(np.hstack([pool, np.ones((5, 1))]))

    def loss(theta, a, y_draw):
        return (y_draw - theta @ a) ** 2

    per_sample = vmap(grad(loss), in_dims=(None, None, 0))
    gen = torch.Generator().manual_seed(3)
    M = 100_000  # draws per member; the MC relative error is about sqrt(2 / (K·M)) ≈ 0.2 %
    mean, std = torch.as_tensor(p.mean), torch.as_tensor(np.sqrt(p.var))
    for i in range(4):
        draws = mean[:, i, None] + std[:, i, None] * torch.randn(
            mean.shape[0], M, generator=gen, dtype=torch.float64
        )
        g = per_sample(theta_hat, design[i], draws.reshape(-1))  # (K·M, D+1)
        total = float((g**2).sum(1).mean()) * mean.shape[0]  # Σ_k E_k ‖∇ℓ‖²
        assert total == pytest.approx(closed[i], rel=0.01)


def test_emcm_equals_scikit_activeml_on_the_same_members(monkeypatch):
    """(b) Eq. 2 = scikit-activeml's ExpectedModelChangeMaximization utilities, with our
    bootstrap members injected in place of its own and φ(x) = [x, 1]."""
    from skactiveml.pool import ExpectedModelChangeMaximization
    from skactiveml.pool import _expected_model_change_maximization as emc_module

    from eglpp.regression.skactiveml_adapter import FixedRegressor, intercept_map

    x, y = _data(30, 4, 4)
    pool = np.random.default_rng(5).normal(size=(25, 4))
    ens = fit_ensemble(x, y, EnsembleConfig("linear", n_members=5), seed=6)
    K = ens.thetas.shape[0]
    members = [FixedRegressor(lambda z, k=k: ens.member_means(z)[k]) for k in range(K)]
    captured = {}

    def inject(est, X, y, bootstrap_size, **kwargs):
        captured["bootstrap_size"] = bootstrap_size
        return members

    monkeypatch.setattr(emc_module, "_bootstrap_estimators", inject)
    X_all = np.vstack([x, pool])
    y_all = np.concatenate([y, np.full(len(pool), np.nan)])
    qs = ExpectedModelChangeMaximization(bootstrap_size=K, feature_map=intercept_map)
    _, utilities = qs.query(
        X_all,
        y_all,
        FixedRegressor(ens.main_mean),
        fit_reg=False,
        candidates=np.arange(30, 55),
        return_utilities=True,
    )
    assert captured["bootstrap_size"] == K
    p = ens.predict(pool)
    ours = emcm(np.sqrt(p.grad_sq), p.mean, p.f)
    np.testing.assert_allclose(utilities[0, 30:], ours, rtol=1e-10)
    assert np.isnan(utilities[0, :30]).all()


@pytest.mark.parametrize("noise_in", [True, False])
def test_gp_member_variance_equals_scikit_learn_and_eq9(noise_in):
    """(c) GP members' σ² = scikit-learn's predict(return_std=True)² (noise in) and Eq. 9."""
    x, y = _data(25, 2, 7)
    pool = np.random.default_rng(8).normal(size=(9, 2))
    ens = fit_ensemble(x, y, EnsembleConfig("gp", n_members=3, gp_noise_in_variance=noise_in), 9)
    p = ens.predict(pool)
    for k, gp in enumerate(ens.members):
        # an independent GP with the member's kernel and training data, not refitted
        fresh = GaussianProcessRegressor(gp.kernel_, normalize_y=True, optimizer=None)
        fresh.fit(gp.X_train_, gp._y_train_mean + gp._y_train_std * gp.y_train_)
        mu, std = fresh.predict(pool, return_std=True)
        np.testing.assert_allclose(p.mean[k], mu, rtol=1e-8)
        # Eq. 9 by hand, in normalised units, then back to target units
        kern = gp.kernel_
        noise = kern.k2.noise_level
        K_L = kern(gp.X_train_)  # includes the white noise on the diagonal
        k_star = kern.k1(pool, gp.X_train_)
        var = kern.k1.diag(pool) - np.einsum("ij,jk,ik->i", k_star, np.linalg.inv(K_L), k_star)
        var = (var + (noise if noise_in else 0.0)) * gp._y_train_std**2
        np.testing.assert_allclose(p.var[k], var, rtol=1e-6)
        if noise_in:
            np.testing.assert_allclose(p.var[k], std**2, rtol=1e-8)
    np.testing.assert_array_equal(p.grad_sq, 1.0)


def test_egl_is_gradient_times_k_times_predictive_variance():
    """(d) egl = ‖∇f‖² · K · variance (Eq. 11) when f is the ensemble mean."""
    rng = np.random.default_rng(10)
    K, U = 7, 50
    mean = rng.normal(size=(K, U))
    var = rng.gamma(2.0, size=(K, U))
    grad_sq = rng.gamma(3.0, size=U)
    f = mean.mean(axis=0)
    np.testing.assert_allclose(
        egl(grad_sq, mean, var, f), grad_sq * K * predictive_variance(mean, var), rtol=1e-12
    )
    # and Eq. 11 is the law of total variance of the equal-weight mixture: check by sampling
    draws = mean[:, :3, None] + np.sqrt(var[:, :3, None]) * rng.normal(size=(K, 3, 200_000))
    mixture_var = draws.transpose(1, 0, 2).reshape(3, -1).var(axis=1)
    np.testing.assert_allclose(predictive_variance(mean, var)[:3], mixture_var, rtol=0.02)


def test_per_example_grad_sq_equals_autograd_loop():
    """(e) torch.func per-example ‖∇_θ f(x)‖² = one autograd backward per example."""
    gen = torch.Generator().manual_seed(11)
    params = init_params(1, 4, 8, gen)
    x = torch.randn(13, 4, generator=gen, dtype=torch.float64)
    fast = per_example_grad_sq(params, x, chunk=5)  # chunks of 5 exercise the chunking
    loop = []
    for row in x:
        p = {k: v.clone().requires_grad_() for k, v in params.items()}
        forward(p, row[None, None, :])[0, 0, 0].backward()
        loop.append(sum(float((v.grad**2).sum()) for v in p.values()))
    np.testing.assert_allclose(fast.numpy(), np.array(loop), rtol=1e-10)


def test_linear_grad_factor_and_members():
    """Linear: ‖∇θ f‖² = ‖[x, 1]‖²; with ridge 0 the main model is least squares and σ² is
    the unbiased residual variance RSS / (n - D - 1) (scikit-learn / numpy lstsq oracle)."""
    from sklearn.linear_model import LinearRegression

    x, y = _data(30, 3, 12)
    ens = fit_ensemble(x, y, EnsembleConfig("linear", n_members=3, ridge=0.0), 13)
    lr = LinearRegression().fit(x, y)
    np.testing.assert_allclose(ens.theta, np.r_[lr.coef_, lr.intercept_], rtol=1e-8)
    rss = float(((y - lr.predict(x)) ** 2).sum())
    assert ens.sigma2_main == pytest.approx(rss / (30 - 4), rel=1e-8)
    p = ens.predict(x[:4])
    np.testing.assert_allclose(p.grad_sq, (x[:4] ** 2).sum(1) + 1.0)


def test_mlp_family_predictive_shapes_and_gradient_units():
    x, y = _data(30, 3, 14)
    cfg = EnsembleConfig("mlp", n_members=3, mlp_hidden=8, mlp_epochs=60)
    ens = fit_ensemble(x, y * 10.0, cfg, 15)
    p = ens.predict(x[:7])
    assert p.mean.shape == p.var.shape == (3, 7)
    assert (p.var > 0).all() and (p.grad_sq > 0).all()
    np.testing.assert_allclose(ens.member_means(x[:7]), p.mean)
    np.testing.assert_allclose(ens.main_mean(x[:7]), p.f)
    xs = torch.as_tensor((x[:7] - ens.x_mean) / ens.x_std)
    raw = per_example_grad_sq(ens.main, xs).numpy()
    np.testing.assert_allclose(p.grad_sq, raw * ens.y_std**2)  # f = m + s·g ⇒ ‖∇f‖² = s²‖∇g‖²
