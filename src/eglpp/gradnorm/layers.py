"""Per-example squared gradient norms of one layer from its input and its output gradients.

Each rule takes the layer's input ``a`` (B, ...) of one batched forward and the gradients ``g``
(K, B, ...) of K losses per example with respect to the layer's output, and returns the (K, B)
squared norms of the per-example gradients of the layer's own parameters, without forming the
whole network's per-example gradient (Goodfellow's trick and its relatives):

- ``nn.Conv2d`` (any stride, padding, dilation, groups; depthwise included) and ``nn.Linear``
  (any leading dims): with ``U`` the unfolded input (P positions × fan-in, per group) and ``G``
  the output gradient (P × C_out, per group), the weight gradient is ``Gᵀ U``; its squared norm
  directly (``einsum``) or, at few positions, as the "ghost norm" ``Σ_pq (G Gᵀ)_pq (U Uᵀ)_pq``;
  the bias gradient is ``Σ_p G``;
- ``nn.ConvTranspose2d`` (``groups=1``): the layer's input (P × C_in) against the output
  gradient unfolded with its kernel (P × C_out·kh·kw);
- affine normalisations, ``y = γ x̂ + β``: ``∂/∂γ = Σ g·x̂``, ``∂/∂β = Σ g`` over the positions
  that share a parameter, with ``x̂`` the normalised input: ``nn.BatchNorm*`` in eval mode
  (running statistics), ``nn.GroupNorm`` (each example's own statistics), ``nn.LayerNorm`` over
  its last dims (a channels-first network permutes to channels-last around it);
- ``nn.Embedding``: the gradient of row ``v`` is the sum of the output gradients at the
  positions holding index ``v`` (none at ``padding_idx``): its squared norm is
  ``Σ_pq [i_p = i_q] g_p·g_q``, or the scattered rows' norm when the table is small.

:func:`rule_problem` says why a module has no rule here (the caller then differentiates it
with torch.func, :mod:`eglpp.gradnorm.local`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["BATCH_NORM", "rule_problem", "layer_norms", "weight_norms"]

BATCH_NORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_RULES = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.GroupNorm, nn.LayerNorm, nn.Embedding)


def rule_problem(m: nn.Module) -> str | None:
    """None when :func:`layer_norms` covers ``m``'s own parameters, else why not."""
    if isinstance(m, nn.Conv2d) and (isinstance(m.padding, str) or m.padding_mode != "zeros"):
        return "pads by name or mode"
    if isinstance(m, nn.ConvTranspose2d) and m.groups != 1:
        return "is a grouped transposed convolution"
    if isinstance(m, nn.Embedding) and (m.scale_grad_by_freq or m.sparse):
        return "scales its gradient by the batch's frequencies (or is sparse)"
    if type(m) in BATCH_NORM:
        return None if m.track_running_stats else "has no running statistics"
    if type(m) in _RULES:  # exact types: a subclass may have its own forward
        return None
    return f"has no per-layer rule ({type(m).__name__})"


def weight_norms(a: Tensor, g: Tensor) -> Tensor:
    """Squared norms of per-example ``Σ_p g_p a_pᵀ``: a (B, P, I), g (K, B, P, O) → (K, B)."""
    K, B, P, O = g.shape
    I = a.shape[-1]
    if P * P * (I + O) < P * I * O:  # ghost norm: cheaper at few positions
        aa = a @ a.transpose(1, 2)  # (B, P, P)
        gg = g @ g.transpose(2, 3)  # (K, B, P, P)
        return (aa[None] * gg).flatten(2).sum(-1)
    return torch.einsum("kbpo,bpi->kboi", g, a).pow(2).flatten(2).sum(-1)


def _wants(p: Tensor | None) -> bool:
    return p is not None and p.requires_grad


def layer_norms(m: nn.Module, a: Tensor, g: Tensor) -> Tensor:
    """(K, B) squared norms of one layer's per-example parameter gradients."""
    if isinstance(m, nn.ConvTranspose2d):
        return _transposed_norms(m, a, g)
    if isinstance(m, nn.Conv2d):
        return _conv_norms(m, a, g)
    if isinstance(m, nn.Embedding):
        return _embedding_norms(m, a, g)
    if isinstance(m, nn.Linear):
        K, B = g.shape[:2]
        u, gp = a.reshape(B, -1, a.shape[-1]), g.reshape(K, B, -1, g.shape[-1])
        out = weight_norms(u, gp) if _wants(m.weight) else g.new_zeros(K, B)
        return out + gp.sum(2).pow(2).sum(-1) if _wants(m.bias) else out
    if isinstance(m, nn.LayerNorm):
        n = len(m.normalized_shape)
        xhat = F.layer_norm(a, m.normalized_shape, eps=m.eps)
        return _affine_norms(m, xhat, g, tuple(range(2, g.dim() - n)))
    if isinstance(m, nn.GroupNorm):
        xhat = F.group_norm(a, m.num_groups, eps=m.eps)
    else:  # batch norm, eval mode
        shape = (1, -1) + (1,) * (a.dim() - 2)
        xhat = (a - m.running_mean.view(shape)) / torch.sqrt(m.running_var.view(shape) + m.eps)
    return _affine_norms(m, xhat, g, tuple(range(3, g.dim())))


def _affine_norms(m: nn.Module, xhat: Tensor, g: Tensor, shared: tuple[int, ...]) -> Tensor:
    """``y = γ x̂ + β``: γ's and β's per-example gradients sum ``g·x̂`` and ``g`` over the
    ``shared`` dims of g (K, B, ...) (the positions that share one parameter entry)."""
    out = g.new_zeros(g.shape[:2])
    for p, v in ((m.weight, g * xhat), (m.bias, g)):
        if _wants(p):
            out = out + (v.sum(shared) if shared else v).flatten(2).pow(2).sum(-1)
    return out


def _conv_norms(m: nn.Conv2d, a: Tensor, g: Tensor) -> Tensor:
    """Grouped convolutions: each group's weight against its own input channels."""
    K, B, C_out = g.shape[:3]
    G = m.groups
    u = F.unfold(a, m.kernel_size, m.dilation, m.padding, m.stride)  # (B, C_in·kk, P)
    P = u.shape[-1]
    u = u.reshape(B * G, -1, P).transpose(1, 2)  # (B·G, P, C_in/G·kk)
    gp = g.reshape(K, B * G, C_out // G, P).transpose(2, 3)  # (K, B·G, P, C_out/G)
    out = weight_norms(u, gp).view(K, B, G).sum(-1) if _wants(m.weight) else g.new_zeros(K, B)
    return out + gp.sum(2).pow(2).view(K, B, -1).sum(-1) if _wants(m.bias) else out


def _transposed_norms(m: nn.ConvTranspose2d, a: Tensor, g: Tensor) -> Tensor:
    """Transposed convolution: its weight gradient pairs each input position with the patch of
    the output gradient it was spread over, i.e. the input (P × C_in) against the output
    gradient unfolded with the layer's kernel, stride, padding and dilation (P × C_out·kh·kw)."""
    K, B = g.shape[:2]
    flat = g.reshape(K * B, *g.shape[2:])
    patches = F.unfold(flat, m.kernel_size, m.dilation, m.padding, m.stride)  # (KB, O·kk, P)
    gp = patches.reshape(K, B, patches.shape[1], -1).transpose(2, 3)  # (K, B, P, O·kk)
    u = a.flatten(2).transpose(1, 2)  # (B, P, C_in)
    if u.shape[1] != gp.shape[2]:
        raise ValueError(f"hook_gradnorms: {type(m).__name__} positions do not match")
    out = weight_norms(u, gp) if _wants(m.weight) else g.new_zeros(K, B)
    return out + g.flatten(3).sum(-1).pow(2).sum(-1) if _wants(m.bias) else out


def _embedding_norms(m: nn.Embedding, idx: Tensor, g: Tensor) -> Tensor:
    """Rows gathered by ``idx`` (B, ...): per example, the squared norm of the output
    gradients summed per index (``padding_idx`` gets no gradient)."""
    K, B = g.shape[:2]
    idx = idx.reshape(B, -1)  # (B, P)
    gp = g.reshape(K, B, idx.shape[1], -1)  # (K, B, P, D)
    if m.padding_idx is not None:
        gp = gp * (idx != m.padding_idx)[None, :, :, None]
    if not _wants(m.weight):
        return g.new_zeros(K, B)
    P, D = gp.shape[2:]
    if m.num_embeddings * D <= P * P:  # the rows themselves
        rows = torch.zeros(K, B, m.num_embeddings, D, dtype=gp.dtype, device=gp.device)
        rows.scatter_add_(2, idx[None, :, :, None].expand(K, B, P, D), gp)
        return rows.pow(2).flatten(2).sum(-1)
    same = (idx[:, :, None] == idx[:, None, :]).to(gp.dtype)  # (B, P, P)
    return (same[None] * (gp @ gp.transpose(2, 3))).flatten(2).sum(-1)
