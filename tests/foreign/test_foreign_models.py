"""eglpp.score / eglpp.select on four networks eglpp did not design (``foreign_networks``).

Oracles nobody here wrote: EGL++'s squared gradient norms from a plain per-(example,
neighbour) ``torch.autograd.grad`` loop with ``torch.nn.functional.mse_loss``; Core-set's query
from scikit-activeml's ``k_greedy_center`` on embeddings the test pools itself; the tabular
model's EGL++ against its closed form ``4 ‖∇θ f(x)‖² Σ_j p_j (y_j − f(x))²``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from foreign_networks import coordinate_net, simple_baseline, small_vit, tabular_mlp, vit_embedding
from scipy.stats import spearmanr
from skactiveml.pool._core_set import k_greedy_center

import eglpp
from eglpp.regression.strategies import egl as egl_closed_form
from eglpp.strategies import LearningLoss
from eglpp.strategies.multipeak import multi_peak_entropy

EGL = {"k": 4, "perplexity": 2.0}
#: torch.func has no batching rule for the CPU flash-attention kernel (the ViT): slower, not wrong.
pytestmark = pytest.mark.filterwarnings("ignore:There is a performance drop:UserWarning")


def _images(n: int, size: int, seed: int) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _case(name: str):
    """(model, its contract options, prediction reader, pool, (inputs, targets))."""
    if name == "simple_baseline":
        model, size, opts, read = simple_baseline(), 64, {"embedding": "layer4"}, lambda o: o
    elif name == "coordinates":
        model, size, read = coordinate_net(), 32, lambda o: o["coords"]
        opts = {"prediction": "coords", "embedding": "features"}
    elif name == "vit":
        model, size, read = small_vit(), 32, lambda o: o[0]
        opts = {"prediction": 0, "embedding": vit_embedding}
    else:  # a tabular regressor: rows of 10 features, one target each
        gen = torch.Generator().manual_seed(1)
        x, pool = torch.randn(8, 10, generator=gen), torch.randn(6, 10, generator=gen)
        return (
            tabular_mlp(),
            {"embedding": "3"},
            lambda o: o,
            pool,
            (x, torch.randn(8, 1, generator=gen)),
        )
    x, pool = _images(8, size, 1), _images(6, size, 2)
    with torch.no_grad():
        shape = read(model(x[:1])).shape[1:]
    y = torch.rand(8, *shape, generator=torch.Generator().manual_seed(3)) * (
        size if len(shape) == 2 else 1
    )
    return model, opts, read, pool, (x, y)


def naive_gradnorms(model, read, pool, targets, neighbours) -> np.ndarray:
    """‖∇θ mse(f(x_i), y_j)‖² by one autograd call per (example, neighbour)."""
    params = [p for p in model.parameters() if p.requires_grad]
    model.eval()
    out = np.zeros(neighbours.shape)
    for i in range(len(pool)):
        for k, j in enumerate(neighbours[i]):
            loss = F.mse_loss(read(model(pool[i : i + 1])), targets[j : j + 1])
            grads = torch.autograd.grad(loss, params)
            out[i, k] = sum(float(g.double().pow(2).sum()) for g in grads)
    return out


def pooled(model, module: str, x: torch.Tensor) -> np.ndarray:
    """The test's own embeddings: a hook on ``module``, averaged over the spatial axes."""
    seen = []
    handle = dict(model.named_modules())[module].register_forward_hook(
        lambda m, i, o: seen.append(o)
    )
    with torch.no_grad():
        model(x)
    handle.remove()
    z = seen[0]
    return (z.mean(dim=(-2, -1)) if z.dim() == 4 else z).double().numpy()


@pytest.mark.parametrize("name", ["simple_baseline", "coordinates", "vit", "tabular"])
def test_egl_pp_equals_a_naive_autograd_loop(name):
    model, opts, read, pool, (x, y) = _case(name)
    model.train()  # as a user's training loop leaves it: batch norm and dropout must be off
    out = eglpp.score("egl++", model, pool, (x, y), **opts, **EGL)
    assert model.training and all(m.training for m in model.modules())  # flags restored
    nb, p, g = out.details["neighbours"], out.details["p"], out.details["gradnorms"]
    naive = naive_gradnorms(model, read, pool, y, nb)  # in eval mode
    np.testing.assert_allclose(g, naive, rtol=1e-4)
    np.testing.assert_allclose(out.scores, (p * naive).sum(1), rtol=1e-4)
    assert (naive > 0).all()


@pytest.mark.parametrize("name", ["coordinates", "vit"])
def test_egl_pp_with_predicted_labels_equals_the_loop_on_the_model_predictions(name):
    model, opts, read, pool, (x, y) = _case(name)
    out = eglpp.score("egl++", model, pool, (x, y), **opts, **EGL, label_source="prediction")
    with torch.no_grad():
        predicted = read(model(x))
    naive = naive_gradnorms(model, read, pool, predicted, out.details["neighbours"])
    np.testing.assert_allclose(out.details["gradnorms"], naive, rtol=1e-4)


@pytest.mark.parametrize("name", ["simple_baseline", "coordinates", "vit"])
def test_approx_estimator_with_every_neighbour_exact_is_the_exact_score(name):
    model, opts, _, pool, data = _case(name)
    exact = eglpp.score("egl++", model, pool, data, **opts, **EGL)
    approx = eglpp.score("egl++", model, pool, data, **opts, **EGL, estimator="approx", n_exact=4)
    np.testing.assert_allclose(approx.scores, exact.scores, rtol=1e-4)
    cheap = eglpp.score("egl++", model, pool, data, **opts, **EGL, estimator="approx", n_exact=1)
    assert np.isfinite(cheap.scores).all() and (cheap.scores <= exact.scores * (1 + 1e-4)).all()


@pytest.mark.parametrize(
    ("name", "module"),
    [("simple_baseline", "layer4"), ("coordinates", "features"), ("tabular", "3")],
)
def test_coreset_equals_scikit_activeml_k_greedy_center(name, module):
    model, opts, _, pool, (x, y) = _case(name)
    sel = eglpp.select("coreset", model, pool, (x, y), budget=4, **opts)
    zl, zu = pooled(model, module, x), pooled(model, module, pool)
    X = np.concatenate([zl, zu])
    labels = np.concatenate([np.zeros(len(zl)), np.full(len(zu), np.nan)])
    expected, _ = k_greedy_center(X, labels, batch_size=4, random_state=0)
    np.testing.assert_array_equal(sel.query_indices, np.asarray(expected) - len(zl))


def test_coreset_on_the_vit_callable_embedding_equals_scikit_activeml():
    model, opts, _, pool, (x, y) = _case("vit")
    sel = eglpp.select("coreset", model, pool, (x, y), budget=3, **opts)
    with torch.no_grad():
        zl, zu = (vit_embedding(model, t).double().numpy() for t in (x, pool))
    labels = np.concatenate([np.zeros(len(zl)), np.full(len(zu), np.nan)])
    expected, _ = k_greedy_center(np.concatenate([zl, zu]), labels, batch_size=3, random_state=0)
    np.testing.assert_array_equal(sel.query_indices, np.asarray(expected) - len(zl))


def test_vit_hooks_combine_layer_norms_with_per_example_gradients_of_the_rest():
    """Issue 22: hooks no longer refuse the ViT: LayerNorm/Linear/conv per layer, attention by
    its own per-example gradients, ``position`` (used in forward) by the whole model's."""
    model, opts, _, pool, data = _case("vit")
    by_vmap = eglpp.score("egl++", model, pool, data, **opts, **EGL, method="vmap")
    by_hooks = eglpp.score("egl++", model, pool, data, **opts, **EGL, method="hooks")
    np.testing.assert_allclose(
        by_hooks.details["gradnorms"], by_vmap.details["gradnorms"], rtol=1e-4
    )


@pytest.mark.parametrize("name", ["simple_baseline", "coordinates"])
def test_hooks_equal_vmap(name):  # the SimpleBaseline's head: transposed convolutions
    model, opts, _, pool, data = _case(name)
    by_vmap = eglpp.score("egl++", model, pool, data, **opts, **EGL)
    by_hooks = eglpp.score("egl++", model, pool, data, **opts, **EGL, method="hooks")
    np.testing.assert_allclose(
        by_hooks.details["gradnorms"], by_vmap.details["gradnorms"], rtol=1e-4
    )


def test_multipeak_and_learning_loss_on_the_simple_baseline():
    model, opts, _, pool, data = _case("simple_baseline")
    with torch.no_grad():
        heatmaps = model(pool).numpy()
    out = eglpp.score("multipeak", model, pool, data, **opts, min_distance=2)
    np.testing.assert_allclose(out.scores, multi_peak_entropy(heatmaps, min_distance=2))
    head = LearningLoss(hidden=4).auxiliary((32, 64))
    scored = eglpp.score(
        "learning-loss", model, pool, None, features=("layer3", "layer4"), head=head
    )
    seen = []
    hooks = [
        getattr(model, n).register_forward_hook(lambda m, i, o: seen.append(o))
        for n in ("layer3", "layer4")
    ]
    with torch.no_grad():
        model(pool)
        expected = head.predict(tuple(seen)).numpy()
    for h in hooks:
        h.remove()
    np.testing.assert_allclose(scored.scores, expected, rtol=1e-6)


def test_multipeak_refuses_a_coordinate_prediction():
    model, opts, _, pool, data = _case("coordinates")
    with pytest.raises(ValueError, match=r"multipeak needs heatmap predictions.*\(6, 14, 2\)"):
        eglpp.score("multipeak", model, pool, data, **opts)


def _fit(model, x, y, steps: int = 300) -> None:
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        opt.zero_grad()
        F.mse_loss(model(x), y).backward()
        opt.step()
    model.eval()


def test_tabular_mlp_egl_pp_closed_form_and_egl_beside_it(capsys):
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    X = torch.tensor((X - X.mean(0)) / X.std(0), dtype=torch.float32)
    y = torch.tensor((y - y.mean()) / y.std(), dtype=torch.float32)[:, None]
    lab, pool = np.arange(40), np.arange(40, 240)
    model = tabular_mlp()
    _fit(model, X[lab], y[lab])
    out = eglpp.score("egl++", model, X[pool], (X[lab], y[lab]), embedding="3", k=10, perplexity=5)
    nb, p = out.details["neighbours"], out.details["p"]
    params = list(model.parameters())
    f, grad_sq = [], []
    for i in pool:  # closed form: ∇θ (y − f)² = −2 (y − f) ∇θ f
        fi = model(X[i : i + 1]).sum()
        grad_sq.append(sum(float(g.pow(2).sum()) for g in torch.autograd.grad(fi, params)))
        f.append(float(fi))
    f, grad_sq = np.array(f), np.array(grad_sq)
    closed = 4 * grad_sq * (p * (y[lab].numpy()[nb, 0] - f[:, None]) ** 2).sum(1)
    np.testing.assert_allclose(out.scores, closed, rtol=1e-4)
    members = []  # EGL's closed form (eglpp.regression.strategies.egl) from a bootstrap ensemble
    for seed in range(5):
        boot = np.random.default_rng(seed).choice(lab, size=len(lab))
        member = tabular_mlp(seed=seed + 1)
        _fit(member, X[boot], y[boot])
        with torch.no_grad():
            members.append(member(X[pool])[:, 0].numpy())
    mean = np.array(members)
    egl = egl_closed_form(grad_sq, mean, np.zeros_like(mean), f)
    rho = spearmanr(out.scores, egl).statistic
    with capsys.disabled():
        print(f"\ntabular MLP (diabetes, 40 labelled, 200 pool): Spearman(EGL++, EGL) = {rho:.3f}")
    assert np.isfinite(rho)


@pytest.mark.parametrize(
    "deconv",
    [
        {"kernel_size": 4, "stride": 2, "padding": 1},
        {"kernel_size": 3, "stride": 2, "padding": 1, "output_padding": 1},
        {"kernel_size": 3, "stride": 3, "padding": 2, "dilation": 2},
        {"kernel_size": (2, 3), "stride": (1, 2), "padding": (0, 1), "bias": False},
    ],
)
def test_hooks_on_transposed_convolutions_equal_an_autograd_loop(deconv):
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, 2, 1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
        torch.nn.ConvTranspose2d(4, 5, **deconv), torch.nn.ReLU(), torch.nn.Conv2d(5, 2, 1),
    ).eval()  # fmt: skip
    model[1].running_mean.uniform_(-1, 1)
    pool, x = _images(3, 12, 4), _images(5, 12, 5)
    with torch.no_grad():
        y = torch.rand_like(model(x))
    out = eglpp.score("egl++", model, pool, (x, y), embedding="2", **EGL, method="hooks")
    naive = naive_gradnorms(model, lambda o: o, pool, y, out.details["neighbours"])
    np.testing.assert_allclose(out.details["gradnorms"], naive, rtol=1e-4)
