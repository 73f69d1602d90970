"""Per-example squared gradient norms from layer activations and output gradients (Goodfellow).

Goodfellow's trick: a layer's per-example weight gradient is built from the layer's input
``a`` and the gradient ``g`` of the loss with respect to its output, both available from
one batched forward and one batched backward. Here the backward carries the K cotangents of
every image at once (``torch.autograd.grad(..., is_grads_batched=True)``: K × B examples, data
gradients only, ordinary batched kernels), and each layer's per-example squared norm is taken
without ever forming the whole network's per-example gradient:

- ``nn.Conv2d`` (any stride/padding/dilation, ``groups=1``) and ``nn.Linear``: with ``U`` the
  unfolded input (P positions × fan-in) and ``G`` the output gradient (P × C_out), the weight
  gradient is ``Gᵀ U``; its squared norm is computed directly (``einsum``) or, when cheaper
  (few positions), as the "ghost norm" ``Σ_pq (G Gᵀ)_pq (U Uᵀ)_pq``; the bias gradient is ``Σ_p G``;
- ``nn.ConvTranspose2d`` (``groups=1``): the same with the roles swapped, the layer's input
  (P × C_in) against the output gradient unfolded with its kernel (P × C_out·kh·kw);
- ``nn.BatchNorm*`` in eval mode: ``∂/∂γ = Σ_p g·x̂``, ``∂/∂β = Σ_p g`` with ``x̂`` normalised by
  the running statistics.

``params="conv_linear"`` gives the paper's approximation (conv and linear layers only, no
batch-norm parameters); ``params="all"`` is exact for networks built from those layers (any
other layer with parameters raises, naming the first one). Results equal
:func:`eglpp.gradnorm.per_example_gradnorms`.

Speed: on a 2-core CPU (2-stack 32-channel hourglass, 64 px, B = 4, K = 30) the K-batched
backward (``is_grads_batched`` vmaps the autograd engine) made this path several times slower
than the torch.func path, which stays the default; this module is the independent
implementation of the paper's Goodfellow scheme and a cross-check. ``benchmarks/egl_speed.py``
times both.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import vmap

from eglpp.gradnorm.base import LossFn, PredictionFn, cotangents, eval_mode, prediction_of

__all__ = ["hook_cotangent_norms", "hook_gradnorms"]

_CONV_LINEAR = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
_NORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
#: Normalisation layers that ``params="conv_linear"`` leaves out like batch norm.
_OTHER_NORM = (nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm1d, nn.InstanceNorm2d)


def _check_layers(model: nn.Module, params: str) -> list[nn.Module]:
    """The covered layers; the first module with parameters this path cannot differentiate
    (any type but Conv2d, ConvTranspose2d, Linear and BatchNorm, a grouped convolution, batch
    norm without running statistics) raises, naming it and suggesting the vmap path."""
    layers = []
    for name, m in model.named_modules():
        own = [p for p in m.parameters(recurse=False) if p.requires_grad]
        if not own:
            continue
        problem = None
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m.groups != 1:
            problem = "is a grouped convolution"
        elif isinstance(m, _NORM) and params == "all" and not m.track_running_stats:
            problem = "has no running statistics (eval-mode batch norm needs them)"
        elif isinstance(m, _CONV_LINEAR) or (params == "all" and isinstance(m, _NORM)):
            layers.append(m)
        elif not (params == "conv_linear" and isinstance(m, _NORM + _OTHER_NORM)):
            held = ", ".join(n for n, p in m.named_parameters(recurse=False) if p.requires_grad)
            problem = (
                f"holds parameters ({held}) but only Conv2d, ConvTranspose2d, Linear and BatchNorm "
                "layers are supported"
            )
        if problem:
            raise ValueError(
                f"gradient-norm method 'hooks': module {name or '(the model itself)'} "
                f"({type(m).__name__}) {problem}; use method 'vmap' (torch.func), which "
                "differentiates any layer"
            )
    return layers


def _weight_norms(a: Tensor, g: Tensor) -> Tensor:
    """Squared norms of per-example ``Σ_p g_p a_pᵀ``: a (B, P, I), g (K, B, P, O) → (K, B)."""
    K, B, P, O = g.shape
    I = a.shape[-1]
    if P * P * (I + O) < P * I * O:  # ghost norm: cheaper at few positions
        aa = a @ a.transpose(1, 2)  # (B, P, P)
        gg = g @ g.transpose(2, 3)  # (K, B, P, P)
        return (aa[None] * gg).flatten(2).sum(-1)
    return torch.einsum("kbpo,bpi->kboi", g, a).pow(2).flatten(2).sum(-1)


def _layer_norms(m: nn.Module, a: Tensor, g: Tensor) -> Tensor:
    """(K, B) squared norms of one layer's per-example parameter gradients."""
    K, B = g.shape[:2]
    if isinstance(m, nn.ConvTranspose2d):
        return _transposed_norms(m, a, g)
    if isinstance(m, nn.Conv2d):
        u = F.unfold(a, m.kernel_size, m.dilation, m.padding, m.stride).transpose(1, 2)
        gp = g.flatten(3).transpose(2, 3)  # (K, B, P, C_out)
    elif isinstance(m, nn.Linear):
        u, gp = a.reshape(B, -1, a.shape[-1]), g.reshape(K, B, -1, g.shape[-1])
    else:  # batch norm, eval mode: y = γ x̂ + β
        shape = (1, -1) + (1,) * (a.dim() - 2)
        xhat = (a - m.running_mean.view(shape)) / torch.sqrt(m.running_var.view(shape) + m.eps)
        out = torch.zeros(K, B, dtype=g.dtype, device=g.device)
        if m.weight is not None and m.weight.requires_grad:
            out += (g * xhat).flatten(3).sum(-1).pow(2).sum(-1)
        if m.bias is not None and m.bias.requires_grad:
            out += g.flatten(3).sum(-1).pow(2).sum(-1)
        return out
    out = _weight_norms(u, gp) if m.weight.requires_grad else 0.0
    if m.bias is not None and m.bias.requires_grad:
        out = out + gp.sum(2).pow(2).sum(-1)
    return out


def _transposed_norms(m: nn.ConvTranspose2d, a: Tensor, g: Tensor) -> Tensor:
    """(K, B) squared norms for a transposed convolution: its weight gradient pairs each input
    position with the patch of the output gradient it was spread over, i.e. the input (P × C_in)
    against the output gradient unfolded with the layer's kernel, stride, padding and dilation
    (P × C_out·kh·kw); the bias gradient sums the output gradient over its positions."""
    K, B = g.shape[:2]
    flat = g.reshape(K * B, *g.shape[2:])
    patches = F.unfold(flat, m.kernel_size, m.dilation, m.padding, m.stride)  # (KB, O·kk, P)
    gp = patches.reshape(K, B, patches.shape[1], -1).transpose(2, 3)  # (K, B, P, O·kk)
    u = a.flatten(2).transpose(1, 2)  # (B, P, C_in)
    if u.shape[1] != gp.shape[2]:
        raise ValueError(f"hook_gradnorms: {type(m).__name__} positions do not match")
    out = _weight_norms(u, gp) if m.weight.requires_grad else torch.zeros(K, B, device=g.device)
    if m.bias is not None and m.bias.requires_grad:
        out = out + g.flatten(3).sum(-1).pow(2).sum(-1)
    return out


def hook_cotangent_norms(
    model: nn.Module,
    images: Tensor,
    make_cotangents: Callable[[Tensor], Tensor],
    *,
    params: str = "all",
    prediction: PredictionFn | None = None,
    m_chunk: int | None = None,
    max_elements: int = 2**27,
) -> Tensor:
    """Squared norms ``‖J_bᵀ c_mb‖²`` (M, B) for M output cotangents per image, via hooks.

    Parameters
    ----------
    model : nn.Module
        Conv2d, Linear and BatchNorm layers carry the covered parameters (see the module
        docstring); it runs once, in eval mode, on ``images``.
    images : Tensor (B, C, H, W)
    make_cotangents : callable
        ``make_cotangents(heatmaps (B, S, J, h, w)) -> (M, B, S, J, h, w)``: the vectors to pull
        back through the network, computed from the (detached) output.
    params : "all" or "conv_linear"
    prediction : callable, optional
        The prediction of a model output (``GradNormConfig.prediction``; None: the heatmaps).
    m_chunk : int, optional
        Cotangents per image carried by one backward (memory: m_chunk × B × the activations of
        the covered layers); by default as many as keep those output gradients within
        ``max_elements`` entries (at least one).
    max_elements : int
        Bound on the output-gradient entries held at once when ``m_chunk`` is not given.
    """
    if params not in ("all", "conv_linear"):
        raise ValueError(f"hook_gradnorms: params must be 'all' or 'conv_linear', got {params!r}")
    layers = _check_layers(model, params)
    heatmaps, calls = _recorded_forward(model, images, layers, prediction)
    cots = make_cotangents(heatmaps.detach())
    if cots.dim() != heatmaps.dim() + 1 or cots.shape[1:] != heatmaps.shape:
        raise ValueError(
            f"make_cotangents must return (M, *{tuple(heatmaps.shape)}), got {tuple(cots.shape)}"
        )
    per_cotangent = sum(z.numel() for _, _, z in calls)  # output-gradient entries, all B images
    M = cots.shape[0]
    step = m_chunk or max(1, min(M, max_elements // max(per_cotangent, 1)))
    return torch.cat(
        [_pulled_back_norms(heatmaps, calls, cots, s, step) for s in range(0, M, step)]
    )


def _recorded_forward(
    model: nn.Module, images: Tensor, layers: list[nn.Module], prediction: PredictionFn | None
) -> tuple[Tensor, list[tuple[nn.Module, Tensor, Tensor]]]:
    """The prediction (e.g. heatmaps (B, S, J, h, w)) of one eval-mode forward with a graph,
    and each covered layer's (module, detached input, output) in the order they ran."""
    calls: list[tuple[nn.Module, Tensor, Tensor]] = []

    def record(m, inputs, output):
        calls.append((m, inputs[0].detach(), output))

    handles = [m.register_forward_hook(record) for m in layers]
    try:
        with eval_mode(model), torch.enable_grad():
            heatmaps = prediction_of(model(images), prediction)  # (B, ...)
    finally:
        for h in handles:
            h.remove()
    if len({id(m) for m, _, _ in calls}) != len(calls):
        raise ValueError("hook_gradnorms: a layer runs twice in forward (shared weights)")
    return heatmaps, calls


def _pulled_back_norms(
    heatmaps: Tensor, calls: list[tuple[nn.Module, Tensor, Tensor]], cots: Tensor, s: int, step: int
) -> Tensor:
    """(step, B) squared norms of cotangents ``s : s + step``: one batched backward to the
    layer outputs, then every layer's per-example norms (the graph is kept for later chunks)."""
    M = cots.shape[0]
    grads = torch.autograd.grad(
        heatmaps,
        [z for _, _, z in calls],
        grad_outputs=cots[s : s + step],
        is_grads_batched=True,
        retain_graph=s + step < M,
        allow_unused=True,
    )
    return sum(
        _layer_norms(m, a, g) for (m, a, _), g in zip(calls, grads, strict=True) if g is not None
    )


def hook_gradnorms(
    model: nn.Module,
    images: Tensor,
    targets: Tensor,
    weights: Tensor,
    *,
    params: str = "all",
    loss_fn: LossFn,
    prediction: PredictionFn | None = None,
    k_chunk: int | None = None,
    max_elements: int = 2**27,
) -> Tensor:
    """Squared per-example gradient norms (B, K), as ``per_example_gradnorms``, via hooks.

    Parameters are those of :func:`eglpp.gradnorm.per_example_gradnorms`; ``params`` is
    ``"all"`` (exact; Conv2d, Linear and BatchNorm layers only) or ``"conv_linear"``.
    Memory: K × B × the activations of the covered layers; ``k_chunk`` bounds the K held at
    once (the forward is shared by all chunks), by default chosen to hold at most
    ``max_elements`` output-gradient entries. Layers must not be modified in place after
    they run (an in-place ReLU on a conv output would be differentiated at the wrong point).
    """

    def make(heatmaps: Tensor) -> Tensor:
        cots = vmap(lambda h, t, w: cotangents(loss_fn, h[None], t, w))(
            heatmaps, targets, weights.to(targets.dtype)
        )  # (B, K, 1, ...)
        return cots.squeeze(2).transpose(0, 1)  # (K, B, ...)

    return hook_cotangent_norms(
        model, images, make, params=params, prediction=prediction, m_chunk=k_chunk,
        max_elements=max_elements,
    ).T  # fmt: skip
