"""The libraries a user would pick instead of eglpp for per-example gradient norms, as
``run(model, x (B, ...), y (B, K, ...), w (B, K, ...)) -> (B, K)`` functions for
``benchmarks/egl_speed.py``: each row is optional and appears only where its library is
installed (they are benchmark-only, never eglpp's dependencies).

- ``BackPACK BatchL2Grad (K copies)``: each image repeated K times in one batch, the summed
  per-example loss backpropagated once with ``BatchL2Grad``, whose ``batch_l2`` is each
  copy's squared gradient norm;
- ``Opacus GradSampleModule (K copies)``: the same batch through Opacus' per-sample gradients
  (``grad_sample``), squared and summed; Opacus refuses modules with buffers and skips modules
  in eval mode, so its copy of the model has each eval-mode batch norm replaced by a
  buffer-free affine of the same running statistics, in train mode (the same function);
- ``torch.func vjp``: one ``vjp`` per image, its K loss cotangents vmapped (the algorithm of
  ``eglpp``'s ``vmap`` path in a few lines, the torch.func tutorial's way).
"""

from __future__ import annotations

import copy
import importlib.util
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, vjp, vmap

from eglpp.gradnorm.base import heatmaps_of
from eglpp.pose.heatmaps import heatmap_loss, heatmap_loss_per_example

__all__ = ["available_peers"]

Run = Callable[[nn.Module, Tensor, Tensor, Tensor], Tensor]


class _FrozenBatchNorm(nn.Module):
    """Eval-mode batch norm without buffers: ``γ (x − μ)/√(σ² + ε) + β`` with μ, σ² plain
    tensor attributes (Opacus accepts modules without buffers)."""

    def __init__(self, bn: nn.modules.batchnorm._BatchNorm) -> None:
        super().__init__()
        self.weight = nn.Parameter(bn.weight.detach().clone())
        self.bias = nn.Parameter(bn.bias.detach().clone())
        self.mean = bn.running_mean.detach().clone()
        self.inv_std = torch.rsqrt(bn.running_var.detach() + bn.eps)

    def forward(self, x: Tensor) -> Tensor:
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return (x - self.mean.view(shape)) * (self.inv_std * self.weight).view(shape) + (
            self.bias.view(shape)
        )


def _without_batch_norm(module: nn.Module) -> nn.Module:
    for name, child in list(module.named_children()):
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(module, name, _FrozenBatchNorm(child))
        else:
            _without_batch_norm(child)
    return module


def _copies(x: Tensor, y: Tensor, w: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Each image K times: (B·K, ...) inputs, targets and weights."""
    K = y.shape[1]
    return x.repeat_interleave(K, 0), y.flatten(0, 1), w.flatten(0, 1)


def _backpack() -> Run:
    from backpack import backpack, extend
    from backpack.extensions import BatchL2Grad

    cache: dict[int, nn.Module] = {}

    def run(model, x, y, w):
        m = cache.setdefault(id(model), extend(copy.deepcopy(model)).eval())
        xc, yc, wc = _copies(x, y, w)
        loss = heatmap_loss_per_example(heatmaps_of(m(xc)), yc, wc).sum()
        with backpack(BatchL2Grad()):
            loss.backward()
        params = [p for p in m.parameters() if p.requires_grad]
        out = sum(p.batch_l2 for p in params).view(y.shape[:2])
        for p in params:
            p.grad, p.batch_l2 = None, None
        return out

    return run


def _opacus() -> Run:
    from opacus import GradSampleModule

    cache: dict[int, nn.Module] = {}

    def run(model, x, y, w):
        if id(model) not in cache:
            m = _without_batch_norm(copy.deepcopy(model)).train()
            cache[id(model)] = GradSampleModule(m, loss_reduction="sum", strict=True)
        gm = cache[id(model)]
        xc, yc, wc = _copies(x, y, w)
        heatmap_loss_per_example(heatmaps_of(gm(xc)), yc, wc).sum().backward()
        params = [p for p in gm.parameters() if p.requires_grad]
        out = sum(p.grad_sample.pow(2).flatten(1).sum(1) for p in params).view(y.shape[:2])
        gm.zero_grad(set_to_none=True)
        return out

    return run


def _func_vjp(model, x, y, w):
    params = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
    buffers = dict(model.named_buffers())

    def per_image(xi, yi, wi):
        def forward(p):
            return heatmaps_of(functional_call(model, (p, buffers), (xi[None],)))

        h, vjp_fn = vjp(forward, params)
        cots = vmap(lambda t, v: grad(lambda hh: heatmap_loss(hh, t[None], v[None]))(h))(yi, wi)
        (g,) = vmap(vjp_fn)(cots)
        return sum(v.pow(2).flatten(1).sum(1) for v in g.values())

    return vmap(per_image)(x, y, w)


def available_peers() -> dict[str, Run]:
    """The peer rows whose library is installed (torch.func always)."""
    peers: dict[str, Run] = {}
    if importlib.util.find_spec("backpack") is not None:
        peers["peer BackPACK BatchL2Grad (K copies)"] = _backpack()
    if importlib.util.find_spec("opacus") is not None:
        peers["peer Opacus GradSampleModule (K copies)"] = _opacus()
    peers["peer torch.func vjp"] = _func_vjp
    return peers
