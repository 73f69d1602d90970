"""Per-example squared gradient norms from module inputs and output gradients (Goodfellow).

Goodfellow's trick: a layer's per-example weight gradient is built from the layer's input
``a`` and the gradient ``g`` of the loss with respect to its output, both available from
one batched forward and one batched backward. Here the backward carries the K cotangents of
every image at once (``torch.autograd.grad(..., is_grads_batched=True)``: K × B examples, data
gradients only, ordinary batched kernels), and each module's per-example squared norm is taken
without ever forming the whole network's per-example gradient:

- layers with a rule (:mod:`eglpp.gradnorm.layers`: convolutions, grouped and depthwise too,
  linear, transposed convolutions, batch/group/layer norm, embeddings): from ``a`` and ``g``;
- any other module with parameters (``nn.MultiheadAttention`` and its projections, a user's own
  layer): the per-example gradient of that module alone, with torch.func
  (:mod:`eglpp.gradnorm.local`);
- parameters used outside any module call, tied, or in a module run twice: the whole model's
  per-example gradient restricted to them (:mod:`eglpp.gradnorm.plan` says which is which).

The sum over all of them is the exact squared norm over the selected parameters
(``params="all"``) or the paper's approximation (``"conv_linear"``: conv and linear layers only).
Results equal :func:`eglpp.gradnorm.per_example_gradnorms`' ``method="vmap"``.
Layers must not be modified in place after they run (an in-place ReLU on a conv output would
be differentiated at the wrong point), and a parameter a layer owns must be used by that layer
only (not also read directly in another module's ``forward``).

Speed (``../shared/bench/gradnorm_peers.py``, one thread): faster than the torch.func path
on the hourglass and the SimpleBaseline, so ``method="auto"`` picks it wherever no parameter
needs the whole model.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from eglpp.gradnorm.base import LossFn, PredictionFn, pair_cotangents, prediction_of
from eglpp.gradnorm.layers import layer_norms
from eglpp.gradnorm.local import local_norms
from eglpp.gradnorm.plan import Plan, batch_first, plan_gradnorms, record_calls

__all__ = ["hook_cotangent_norms", "hook_gradnorms"]


def hook_cotangent_norms(
    model: nn.Module,
    images: Tensor,
    make_cotangents: Callable[[Tensor], Tensor],
    *,
    params: str = "all",
    prediction: PredictionFn | None = None,
    m_chunk: int | None = None,
    max_elements: int = 2**27,
    plan: Plan | None = None,
) -> Tensor:
    """Squared norms ``‖J_bᵀ c_mb‖²`` (M, B) for M output cotangents per image, via hooks.

    Parameters
    ----------
    model : nn.Module
        Any model (see the module docstring); it runs once, in eval mode, on ``images``.
    images : Tensor (B, ...)
    make_cotangents : callable
        ``make_cotangents(heatmaps (b, S, J, h, w), rows) -> (M, b, S, J, h, w)``: the vectors
        to pull back through the network for the images ``images[rows]`` (a slice), computed
        from their (detached) output.
    params : "all" or "conv_linear"
    prediction : callable, optional
        The prediction of a model output (``GradNormConfig.prediction``; None: the heatmaps).
    m_chunk : int, optional
        Cotangents per image carried by one backward (memory: m_chunk × B × the outputs of the
        covered modules); by default as many as keep those output gradients within
        ``max_elements`` entries (at least one; images are split in halves when even one
        cotangent of every image would not fit).
    max_elements : int
        Bound on the gradient entries held at once when ``m_chunk`` is not given.
    plan : Plan, optional
        :func:`~eglpp.gradnorm.plan.plan_gradnorms` of this model (made here by default).
    """
    if params not in ("all", "conv_linear"):
        raise ValueError(f"hook_gradnorms: params must be 'all' or 'conv_linear', got {params!r}")
    plan = plan or plan_gradnorms(model, images, params, prediction)
    if plan.problem:
        raise ValueError(
            f"gradient-norm method 'hooks': module {plan.problem} (eval-mode batch norm needs "
            "them); use method 'vmap' (torch.func), which differentiates any layer"
        )
    return _norms(model, images, make_cotangents, slice(0, images.shape[0]), plan,
                  prediction, m_chunk, max_elements)  # fmt: skip


def _norms(model, images, make_cotangents, rows: slice, plan, prediction, m_chunk, max_elements):
    """:func:`hook_cotangent_norms` of the images ``rows`` of the batch (halved while even one
    cotangent of each image overflows ``max_elements``)."""
    B = rows.stop - rows.start
    keep = {*plan.layers, *(name for name, _ in plan.local)}
    heatmaps, calls = record_calls(model, images[rows], prediction, keep)
    targets, slots = _targets(model, plan, calls, B, heatmaps)
    per_cotangent = sum(z.numel() for z in targets)  # output-gradient entries, all B images
    if m_chunk is None and per_cotangent > max_elements and B > 1:  # not even one fits
        del heatmaps, calls, targets
        mid = rows.start + B // 2
        args = (plan, prediction, m_chunk, max_elements)
        return torch.cat([_norms(model, images, make_cotangents, r, *args)
                          for r in (slice(rows.start, mid), slice(mid, rows.stop))], 1)  # fmt: skip
    cots = make_cotangents(heatmaps.detach(), rows)
    if cots.dim() != heatmaps.dim() + 1 or cots.shape[1:] != heatmaps.shape:
        raise ValueError(
            f"make_cotangents must return (M, *{tuple(heatmaps.shape)}), got {tuple(cots.shape)}"
        )
    M = cots.shape[0]
    step = m_chunk or max(1, min(M, max_elements // max(per_cotangent, 1)))
    modules = dict(model.named_modules())
    norms = []
    for s in range(0, M, step):
        grads = torch.autograd.grad(
            heatmaps, targets, grad_outputs=cots[s : s + step], is_grads_batched=True,
            retain_graph=s + step < M, allow_unused=True,
        )  # fmt: skip
        total = heatmaps.new_zeros(min(step, M - s), B)
        for name, (kind, names, where) in slots.items():
            g = [None if i is None else grads[i] for i in where]
            call = calls[name][0]
            if kind == "layer":
                if g[0] is not None:
                    total += layer_norms(modules[name], call.args[0].detach(), g[0])
            else:
                read = (lambda out: prediction_of(out, prediction)) if not name else None
                part = local_norms(modules[name], names, call, g, max_elements, read)
                total += 0 if part is None else part
        norms.append(total)
    return torch.cat(norms)


def _targets(model: nn.Module, plan: Plan, calls: dict, B: int, heatmaps: Tensor):
    """The tensors the backward differentiates (each covered module's output leaves; for the
    whole model its prediction) and, per module, (``"layer"`` or ``"local"``, its parameter
    names, the leaves' positions)."""
    modules = dict(model.named_modules())
    targets: list[Tensor] = []
    slots: dict[str, tuple[str, tuple[str, ...], list[int | None]]] = {}
    for kind, name, names in [("layer", n, ()) for n in plan.layers] + [
        ("local", n, v) for n, v in plan.local
    ]:
        if name and not batch_first(modules[name], calls.get(name), B):
            raise ValueError(
                f"hook_gradnorms: module {name} ({type(modules[name]).__name__}) ran on a "
                "batch of one with batch-first shapes but not on this batch; use method 'vmap'"
            )
        where: list[int | None] = []
        leaves = calls[name][0].outputs[: 1 if kind == "layer" else None] if name else [heatmaps]
        for leaf in leaves:
            if isinstance(leaf, Tensor) and leaf.requires_grad:
                where.append(len(targets))
                targets.append(leaf)
            else:
                where.append(None)
        slots[name] = (kind, names, where)
    return targets, slots


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
    plan: Plan | None = None,
) -> Tensor:
    """Squared per-example gradient norms (B, K), as ``per_example_gradnorms``, via hooks.

    Parameters are those of :func:`eglpp.gradnorm.per_example_gradnorms`; ``params`` is
    ``"all"`` (exact) or ``"conv_linear"``. Memory: K × B × the outputs of the covered
    modules; ``k_chunk`` bounds the K held at once (the forward is shared by all chunks), by
    default chosen to hold at most ``max_elements`` output-gradient entries.
    """
    weights = weights.to(targets.dtype)

    def make(heatmaps: Tensor, rows: slice) -> Tensor:
        cots = pair_cotangents(loss_fn, heatmaps, targets[rows], weights[rows])  # (b, K, ...)
        return cots.transpose(0, 1)  # (K, b, ...)

    return hook_cotangent_norms(
        model, images, make, params=params, prediction=prediction, m_chunk=k_chunk,
        max_elements=max_elements, plan=plan,
    ).T  # fmt: skip
