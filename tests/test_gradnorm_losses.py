"""Losses users write with torch.nn.functional (issue 21, item 7): every gradient-norm path
equals a naive autograd loop for ``mse_loss``, ``smooth_l1_loss`` and ``huber_loss`` with any
``reduction`` (torch.func cannot take their ``grad`` under two nested vmaps)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from eglpp.gradnorm.approx import expected_gradnorms
from eglpp.gradnorm.base import GradNormConfig
from eglpp.gradnorm.exact import per_example_gradnorms
from eglpp.scoring.contract import ModelContract

LOSSES = [
    (fn, reduction)
    for fn in (F.mse_loss, F.smooth_l1_loss, F.huber_loss)
    for reduction in ("none", "mean", "sum")
]


def _user_loss(fn, reduction):
    """``loss(prediction (B, D), target (B, D)) -> (B,)`` as a user writes it."""

    def loss(pred, target):
        value = fn(pred, target, reduction=reduction)
        return value.mean(1) if reduction == "none" else value.expand(pred.shape[0])

    return loss


def _mlp(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3))


def _naive(model, x, y, loss):
    params = list(model.parameters())
    out = torch.zeros(y.shape[:2], dtype=torch.float64)
    for b in range(x.shape[0]):
        for k in range(y.shape[1]):
            value = loss(model(x[b : b + 1]), y[b, k][None]).sum()
            out[b, k] = sum(g.double().pow(2).sum() for g in torch.autograd.grad(value, params))
    return out


@pytest.mark.parametrize(("fn", "reduction"), LOSSES)
def test_functional_losses_on_every_path(fn, reduction):
    model = _mlp(0)
    g = torch.Generator().manual_seed(1)
    B, K = 3, 4
    x, y = torch.randn(B, 5, generator=g), 2 * torch.randn(B, K, 3, generator=g)
    w = torch.ones(B, K, 1)
    user = _user_loss(fn, reduction)
    loss_fn = ModelContract(model, loss=user).gradnorm_loss()
    expected = _naive(model, x, y, user).numpy()
    p = torch.rand(B, K, generator=g)
    for method in ("vmap", "hooks", "auto"):
        cfg = GradNormConfig(method=method, prediction=lambda o: o)
        got = per_example_gradnorms(model, x, y, w, config=cfg, loss_fn=loss_fn)
        np.testing.assert_allclose(got.double().numpy(), expected, rtol=1e-4, err_msg=method)
        # approx with every neighbour taken exactly, and with one in the tail (its own mean)
        for n_exact in (K, K - 1):
            est = expected_gradnorms(
                model, x, y, w, p, torch.zeros(B, 0, K), n_exact=n_exact, config=cfg,
                loss_fn=loss_fn,
            )  # fmt: skip
            np.testing.assert_allclose(
                est.double().numpy(), (p.double().numpy() * expected).sum(1), rtol=1e-4
            )
