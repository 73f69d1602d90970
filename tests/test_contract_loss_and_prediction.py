"""The model contract's default loss is per example, and a structured output's named prediction
is the one scored.

- The default loss (:func:`~eglpp.scoring.contract.mse_per_example`) must give each example its
  own loss: a loss reduced over the batch and broadcast back to (B,) has the right shape and the
  right sum, and is wrong as soon as the loss is taken of a batch (each example's gradient
  becomes the batch's mean gradient). Oracles: ``torch.nn.functional.mse_loss`` example by
  example, and an autograd loop over examples that differ.
- ``prediction=`` (a dict key, a tuple index, a NamedTuple attribute) must pick exactly that
  output: the networks here put a decoy of the same shape first, and EGL++'s scores must be
  those of the same network reduced to its named output.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import eglpp
from eglpp.scoring.contract import ModelContract, mse_per_example

EGL = {"k": 3, "perplexity": 2.0}


def _rand(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_default_loss_is_each_examples_own_mean_squared_error():
    pred, target = _rand(5, 3, 4, seed=0), _rand(5, 3, 4, seed=1)
    pred[2] *= 10  # examples that differ a lot: a batch mean is no example's loss
    batched = mse_per_example(pred, target)
    assert batched.shape == (5,)
    one_by_one = torch.stack([F.mse_loss(pred[i], target[i]) for i in range(5)])
    torch.testing.assert_close(batched, one_by_one, rtol=1e-6, atol=0)
    alone = torch.cat([mse_per_example(pred[i : i + 1], target[i : i + 1]) for i in range(5)])
    torch.testing.assert_close(batched, alone, rtol=1e-6, atol=0)


def test_default_loss_of_a_batch_has_each_examples_own_gradient():
    """Per-example parameter gradients from one batched loss equal an autograd loop over the
    examples one at a time (what the gradient norms would get from a batched loss)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    x, y = _rand(6, 4, seed=2), _rand(6, 3, seed=3)
    x[0] *= 5
    params = list(net.parameters())
    batched = mse_per_example(net(x), y)
    assert batched.shape == (6,)
    for i in range(6):
        ours = torch.autograd.grad(batched[i], params, retain_graph=True)
        loop = torch.autograd.grad(F.mse_loss(net(x[i : i + 1]), y[i : i + 1]), params)
        for g, want in zip(ours, loop, strict=True):
            torch.testing.assert_close(g, want, rtol=1e-5, atol=1e-7)


# --- a network with two outputs of one shape: the decoy first, the prediction second ---


class Pair(NamedTuple):
    decoy: torch.Tensor
    pred: torch.Tensor


class TwoHeads(nn.Module):
    """Rows of 10 features -> a decoy (B, 2) and the prediction (B, 2), the decoy first, as
    a dict, a tuple or a NamedTuple."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.kind = kind
        self.trunk = nn.Sequential(nn.Linear(10, 16), nn.Tanh())
        self.decoy = nn.Linear(16, 2)
        self.pred = nn.Linear(16, 2)

    def forward(self, x):
        z = self.trunk(x)
        decoy, pred = 3 * self.decoy(z) + 1, self.pred(z)
        if self.kind == "dict":
            return {"decoy": decoy, "pred": pred}
        if self.kind == "tuple":
            return decoy, pred
        return Pair(decoy, pred)


class Only(nn.Module):
    """The same network reduced to its prediction output (the oracle: no selector needed)."""

    def __init__(self, net: TwoHeads) -> None:
        super().__init__()
        self.net = net

    def forward(self, x):
        out = self.net(x)
        return out["pred"] if isinstance(out, dict) else out[1]


SELECTOR = {"dict": "pred", "tuple": 1, "namedtuple": "pred"}


@pytest.mark.parametrize("kind", ["dict", "tuple", "namedtuple"])
def test_the_named_prediction_is_the_one_read(kind):
    net = TwoHeads(kind)
    x = _rand(4, 10, seed=4)
    got = ModelContract(net, prediction=SELECTOR[kind]).outputs(x, frozenset())["prediction"]
    with torch.no_grad():
        torch.testing.assert_close(got, Only(net)(x), rtol=0, atol=0)


@pytest.mark.parametrize("label_source", ["ground_truth", "prediction"])
@pytest.mark.parametrize("kind", ["dict", "tuple", "namedtuple"])
def test_egl_pp_scores_the_named_prediction_not_the_first_output(kind, label_source):
    net = TwoHeads(kind)
    pool, x, y = _rand(5, 10, seed=5), _rand(8, 10, seed=6), _rand(8, 2, seed=7)
    opts = {**EGL, "label_source": label_source}
    ours = eglpp.score("egl++", net, pool, (x, y), prediction=SELECTOR[kind],
                       embedding="trunk", **opts)  # fmt: skip
    oracle = eglpp.score("egl++", Only(net), pool, (x, y), embedding="net.trunk", **opts)
    np.testing.assert_array_equal(ours.details["neighbours"], oracle.details["neighbours"])
    np.testing.assert_allclose(ours.details["gradnorms"], oracle.details["gradnorms"], rtol=1e-6)
    np.testing.assert_allclose(ours.scores, oracle.scores, rtol=1e-6)
    assert (oracle.details["gradnorms"] > 0).all()
