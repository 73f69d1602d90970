"""Per-example squared gradient norms ‖∇θ ℓ(y_j, f(x_i))‖² for K candidate labels per image.

EGL++ (Eq. 12) needs, for every unlabelled image ``x_i`` and each of its K labelled neighbours
``j``, the squared norm of the gradient of the training loss with the neighbour's heatmaps
``y_j`` as target. The loss depends on the image only through the network output ``h_i``, so

.. math::

    \\nabla_\\theta \\ell(y_j, f(x_i)) = J_i^\\top c_{ij},
    \\qquad c_{ij} = \\partial \\ell / \\partial h \\,(h_i, y_j)
    \\;(= 2 w (h_i - y_j) / n \\text{ for the heatmap MSE}),

one forward pass (and one linearisation) per image serves all K targets: the K
vector-Jacobian products ``J_iᵀ c_ij`` are vectorised with ``torch.func.vmap``, and so are the
images of a batch. Batch norm is in eval mode (running statistics), so each image's output
depends on that image alone; the model's train/eval flags are restored afterwards.

Parameters covered (``params``):

- ``"all"`` (default): every parameter with ``requires_grad``: the exact norm.
- ``"conv_linear"``: weights and biases of ``nn.Conv*`` (transposed too) and ``nn.Linear`` only: the
  quantity the paper computes with Goodfellow's per-example trick (no batch-norm parameters).
- ``"last"``: the parameters of the last parameterised module executed in the forward pass
  (for the stacked hourglass, the last heatmap head): cheap, a ranking approximation.
- a tuple of parameter-name prefixes.

``method="hooks"`` computes the same norms from layer activations and output gradients
(Goodfellow's trick, ``eglpp.gradnorm.hooks``), and ``method="auto"`` (the default) takes it
wherever no parameter needs the whole model (:mod:`eglpp.gradnorm.plan`);
``eglpp.gradnorm.approx`` estimates the p-weighted EGL++ sum with fewer than K products per
image. The pool-level functions (:func:`eglpp.gradnorm.pool.pair_gradnorms`, each unlabelled
image against its neighbours) are in ``eglpp.gradnorm.pool``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.func import vjp, vmap

from eglpp.gradnorm.base import (
    GradNormConfig,
    LossFn,
    eval_mode,
    functional_forward,
    pair_cotangents,
    prediction_of,
)
from eglpp.gradnorm.hooks import hook_gradnorms
from eglpp.gradnorm.plan import describe, resolve_method

__all__ = ["per_example_gradnorms"]


def per_example_gradnorms(
    model: nn.Module,
    images: Tensor,
    targets: Tensor,
    weights: Tensor,
    *,
    config: GradNormConfig = GradNormConfig(),
    loss_fn: LossFn,
) -> Tensor:
    """Squared per-example gradient norms for K targets per image.

    Parameters
    ----------
    model : nn.Module
        Any model; ``config.prediction`` reads the prediction from its output (by default a
        (B, S, J, h, w) tensor or a NamedTuple with ``.heatmaps``, ``HourglassOutput``).
    images : Tensor (B, ...)
        The inputs (images (B, C, H, W), or rows of a table).
    targets : Tensor (B, K, ...)
        Candidate labels per input (for the hourglass heatmaps (B, K, J, h, w)).
    weights : Tensor (B, K, ...)
        What the loss takes beside each target (for the hourglass joint weights (B, K, J));
        a placeholder where the loss takes none.
    config : GradNormConfig
    loss_fn : callable
        ``loss_fn(pred (1, S, J, h, w), target (1, J, h, w), weight (1, J)) -> scalar``, the
        model's training loss of one example (for eglpp's hourglass,
        :func:`eglpp.pose.heatmaps.heatmap_loss`). Required: this module knows no model.

    Returns
    -------
    Tensor (B, K)
        ``‖∇θ ℓ(y_k, f(x_b))‖²`` over the selected parameters, float32 (the model's dtype).
    """
    _check_shapes(images, targets, weights)
    method, plan = resolve_method(model, images, config.method, config.params, config.prediction)
    if config.report is not None:
        config.report(describe(method, config.method, plan))
    if method == "hooks":
        return hook_gradnorms(
            model,
            images,
            targets,
            weights,
            params=config.params,
            loss_fn=loss_fn,
            prediction=config.prediction,
            k_chunk=config.k_chunk,
            max_elements=config.budget(images.device),
            plan=plan,
        )
    return _gradnorms_by_vjp(model, images, targets, weights, config, loss_fn)


def _check_shapes(images: Tensor, targets: Tensor, weights: Tensor) -> None:
    """Raise ValueError unless images (B, ...), targets (B, K, ...), weights (B, K, ...)."""
    if targets.dim() < 2:
        raise ValueError(f"targets must be (B, K, ...), got {tuple(targets.shape)}")
    B, K = targets.shape[:2]
    if images.dim() < 1 or images.shape[0] != B:
        raise ValueError(f"images must have B={B} rows, got {tuple(images.shape)}")
    if weights.dim() < 2 or weights.shape[:2] != (B, K):
        raise ValueError(f"weights must be ({B}, {K}, ...), got {tuple(weights.shape)}")


def _gradnorms_by_vjp(
    model: nn.Module,
    images: Tensor,
    targets: Tensor,
    weights: Tensor,
    config: GradNormConfig,
    loss_fn: LossFn,
) -> Tensor:
    """:func:`per_example_gradnorms` with torch.func: one linearisation per image, its K
    products vectorised (``step`` at a time), images in batches of ``b_step``; the loss
    cotangents of all (image, target) pairs come first, from one plain forward
    (:func:`~eglpp.gradnorm.base.pair_cotangents`: one vmap level)."""
    B, K = targets.shape[:2]
    chosen, forward_one = functional_forward(model, images, config.params, config.prediction)
    b_step, step = config.chunks(B, K, sum(p.numel() for p in chosen.values()), images.device)

    def per_image(image: Tensor, cot: Tensor) -> Tensor:
        _, vjp_fn = vjp(lambda p: forward_one(p, image), chosen)
        norms = []
        for s in range(0, K, step):
            (grads,) = vmap(vjp_fn)(cot[s : s + step])  # {name: (k, *shape)}
            norms.append(sum(g.pow(2).flatten(1).sum(1) for g in grads.values()))
        return torch.cat(norms)  # (K,)

    weights = weights.to(targets.dtype)
    out = []
    with eval_mode(model):
        for i in range(0, B, b_step):
            rows = slice(i, i + b_step)
            with torch.no_grad():  # the predictions, for the loss cotangents of every pair
                pred = prediction_of(model(images[rows]), config.prediction)
            cots = pair_cotangents(loss_fn, pred, targets[rows], weights[rows])  # (b, K, ...)
            out.append(vmap(per_image)(images[rows], cots[:, :, None]))
    return torch.cat(out)
