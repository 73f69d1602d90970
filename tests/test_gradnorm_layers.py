"""Per-layer norms of the layers modern networks use, and the combination with per-example
gradients of the rest, against a naive per-(image, target) autograd loop."""

import numpy as np
import pytest
import torch
from torch import nn

from eglpp.gradnorm.base import GradNormConfig
from eglpp.gradnorm.exact import per_example_gradnorms
from eglpp.gradnorm.plan import plan_gradnorms


def _loss(pred, target, weight):
    return ((pred - target) ** 2).flatten(1).mean(1).sum() * weight.sum()


def _naive(model, x, y, w, loss=_loss, params=None):
    if params is None:
        model.eval()
        params = [p for p in model.parameters() if p.requires_grad]
    out = torch.zeros(y.shape[:2], dtype=torch.float64)
    for b in range(x.shape[0]):
        pred = model(x[b : b + 1])
        for k in range(y.shape[1]):
            grads = torch.autograd.grad(
                loss(pred, y[b, k][None], w[b, k][None]), params, retain_graph=True,
                allow_unused=True,
            )  # fmt: skip
            out[b, k] = sum(g.double().pow(2).sum() for g in grads if g is not None)
    return out


class Permuted(nn.Module):
    """A channels-first LayerNorm as ConvNeXt writes it: permute, normalise the channels."""

    def __init__(self, c):
        super().__init__()
        self.norm = nn.LayerNorm(c)

    def forward(self, x):
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class Scale(nn.Module):
    """A layer of the user's own (no per-layer rule): x · γ per channel (layer scale)."""

    def __init__(self, c):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(c))

    def forward(self, x):
        return x * self.gamma[:, None, None]


class Twice(nn.Module):
    """One convolution applied twice (shared weights) and a parameter used in forward."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.offset = nn.Parameter(torch.zeros(4, 1, 1))

    def forward(self, x):
        return self.conv(torch.tanh(self.conv(x))) + self.offset


class Features(nn.Module):
    """Two outputs, the first computed from the second (its gradient would count twice)."""

    def __init__(self, c):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(c))

    def forward(self, x):
        f = x * self.gamma[:, None, None]
        return torch.tanh(f), f


class TwoOutputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.feat, self.out = nn.Conv2d(3, 4, 1), Features(4), nn.Conv2d(4, 2, 1)

    def forward(self, x):
        a, f = self.feat(self.conv(x))
        return self.out(a * f), f  # the root's outputs: prediction, and a feature it came from


class Tokens(nn.Module):
    """Embedding (padding index 0) → attention (batch first or not) → layer norm → linear."""

    def __init__(self, vocab, batch_first=True, position=False):
        super().__init__()
        self.embed = nn.Embedding(vocab, 8, padding_idx=0)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=batch_first)
        self.norm = nn.LayerNorm(8)
        self.head = nn.Linear(8, 3)
        self.position = nn.Parameter(torch.zeros(6, 8)) if position else None

    def forward(self, idx):
        z = self.embed(idx)
        if self.position is not None:
            z = z + self.position
        q = z if self.attn.batch_first else z.transpose(0, 1)
        a, _ = self.attn(q, q, q, need_weights=False)
        a = a if self.attn.batch_first else a.transpose(0, 1)
        return self.head(self.norm(z + a))  # (B, 6, 3)


def _conv_net(kind):
    c = 4
    layers = {
        "groupnorm": [nn.Conv2d(3, c, 3, padding=1), nn.GroupNorm(2, c), nn.ReLU()],
        "layernorm": [nn.Conv2d(3, c, 3, padding=1), Permuted(c), nn.GELU(), nn.LayerNorm([6, 6])],
        "depthwise": [
            nn.Conv2d(3, c, 1),
            nn.Conv2d(c, c, 3, padding=1, groups=c),
            nn.ReLU(),
            nn.Conv2d(c, 2 * c, 3, stride=2, padding=1, groups=2),
        ],
        "own-layer": [nn.Conv2d(3, c, 3, padding=1), Scale(c), nn.Tanh()],
        "shared": [nn.Conv2d(3, c, 1), Twice()],
    }[kind]
    width = 2 * c if kind == "depthwise" else c
    return nn.Sequential(*layers, nn.Conv2d(width, 2, 1))


def _randomise(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=g))
    return g


def _image_data(model, g, B=3, K=4):
    x = torch.randn(B, 3, 6, 6, generator=g)
    with torch.no_grad():
        shape = model(x[:1]).shape[1:]
    return x, torch.randn(B, K, *shape, generator=g), torch.rand(B, K, 1, generator=g) + 0.5


CASES = {  # model, expected "auto" choice
    "groupnorm": "hooks", "layernorm": "hooks", "depthwise": "hooks", "own-layer": "hooks",
    "shared": "vmap",
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(CASES))
def test_layer_norms_equal_the_autograd_loop(kind):
    model = _conv_net(kind)
    g = _randomise(model, 1)
    x, y, w = _image_data(model, g)
    expected = _naive(model, x, y, w).numpy()
    assert plan_gradnorms(model, x, "all", prediction=lambda o: o).method == CASES[kind]
    for method in ("auto", "hooks", "vmap"):
        cfg = GradNormConfig(method=method, prediction=lambda o: o)
        got = per_example_gradnorms(model, x, y, w, config=cfg, loss_fn=_loss)
        np.testing.assert_allclose(got.double().numpy(), expected, rtol=1e-4, err_msg=method)


@pytest.mark.parametrize("vocab", [5, 200])  # table small: the rows; large: the ghost norm
@pytest.mark.parametrize("batch_first", [True, False])
def test_embedding_and_attention_equal_the_autograd_loop(vocab, batch_first):
    model = Tokens(vocab, batch_first)
    g = _randomise(model, 2)
    idx = torch.randint(0, vocab, (3, 6), generator=g)
    idx[:, 0] = 0  # the padding index gets no gradient
    idx[:, 1] = idx[:, 2]  # a row read twice: its gradients add up before the norm
    y, w = torch.randn(3, 4, 6, 3, generator=g), torch.ones(3, 4, 1)
    expected = _naive(model, idx, y, w).numpy()
    plan = plan_gradnorms(model, idx, "all", prediction=lambda o: o)
    assert plan.method == "hooks" and set(plan.layers) == {"embed", "norm", "head"}
    assert dict(plan.local)["attn"] == ("in_proj_weight", "in_proj_bias", "out_proj.weight",
                                        "out_proj.bias")  # fmt: skip
    for method in ("auto", "vmap"):
        cfg = GradNormConfig(method=method, prediction=lambda o: o)
        got = per_example_gradnorms(model, idx, y, w, config=cfg, loss_fn=_loss)
        np.testing.assert_allclose(got.double().numpy(), expected, rtol=1e-4, err_msg=method)


def test_a_parameter_outside_any_layer_gets_the_whole_model():
    model = Tokens(7, position=True)
    g = _randomise(model, 3)
    idx = torch.randint(1, 7, (2, 6), generator=g)
    y, w = torch.randn(2, 3, 6, 3, generator=g), torch.ones(2, 3, 1)
    plan = plan_gradnorms(model, idx, "all", prediction=lambda o: o)
    assert plan.method == "vmap" and dict(plan.local)[""] == ("position",)
    assert "position" in plan.describe()
    expected = _naive(model, idx, y, w).numpy()
    cfg = GradNormConfig(method="hooks", prediction=lambda o: o)  # combined, not refused
    got = per_example_gradnorms(model, idx, y, w, config=cfg, loss_fn=_loss)
    np.testing.assert_allclose(got.double().numpy(), expected, rtol=1e-4)


def test_a_module_whose_outputs_feed_each_other_is_differentiated_by_its_parent():
    model = TwoOutputs()
    g = _randomise(model, 5)
    x = torch.randn(3, 3, 6, 6, generator=g)
    y, w = torch.randn(3, 2, 2, 6, 6, generator=g), torch.ones(3, 2, 1)
    plan = plan_gradnorms(model, x, "all", prediction=lambda o: o[0])
    assert dict(plan.local) == {"": ("feat.gamma",)} and plan.method == "vmap"
    expected = _naive(lambda v: model(v)[0], x, y, w, params=list(model.parameters())).numpy()
    cfg = GradNormConfig(method="hooks", prediction=lambda o: o[0])
    got = per_example_gradnorms(model, x, y, w, config=cfg, loss_fn=_loss)
    np.testing.assert_allclose(got.double().numpy(), expected, rtol=1e-4)


def test_memory_budget_halves_the_images_and_keeps_the_norms():
    model = _conv_net("groupnorm")
    g = _randomise(model, 4)
    x, y, w = _image_data(model, g, B=5, K=3)
    expected = _naive(model, x, y, w).numpy()
    for budget in (1, 300, 10**9):
        cfg = GradNormConfig(method="hooks", max_grad_elements=budget, prediction=lambda o: o)
        got = per_example_gradnorms(model, x, y, w, config=cfg, loss_fn=_loss)
        np.testing.assert_allclose(got.double().numpy(), expected, rtol=1e-4)
    assert GradNormConfig(max_memory="1GiB").budget() == 2**30 // 16
    assert GradNormConfig(max_memory=1600).budget() == 100
    with pytest.raises(ValueError, match="max_memory must be a positive number of bytes"):
        GradNormConfig(max_memory="lots")
