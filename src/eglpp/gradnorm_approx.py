"""A cheaper EGL++ inner sum: fewer than K vector-Jacobian products per image.

EGL++ needs ``s_i = Σ_k p_k ‖Jᵀ c_k‖²`` (Eq. 12) where ``Jᵀ`` is the image's vector-Jacobian
product and ``c_k`` the loss cotangent for neighbour k. With ``P = Σ_k p_k``, the p-weighted mean
cotangent ``c̄ = Σ_k p_k c_k / P`` and the deviations ``d_k = c_k − c̄`` (whose p-weighted sum is
zero, so the cross term vanishes),

.. math::

    s_i = P \\lVert J^\\top \\bar c \\rVert^2 + \\sum_k p_k \\lVert J^\\top d_k \\rVert^2,

and the spread term equals ``E_ε ‖Jᵀ Σ_k ε_k √p_k d_k‖²`` for independent random signs ε
(Rademacher: ``E[ε_k ε_l] = δ_kl``). With R probes the estimate is exact in its first term,
unbiased in the second and costs ``R + 1`` products instead of K. The first term is usually
the larger (neighbours' heatmaps agree more than they differ), so few probes keep the ranking;
measure the rank agreement (``benchmarks/egl_speed.py``) rather than assume it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import vjp, vmap

from eglpp.gradnorm import (
    GradNormConfig,
    LossFn,
    _default_loss,
    cotangents,
    eval_mode,
    functional_forward,
    pool_batches,
)

__all__ = ["expected_gradnorms", "expected_pair_gradnorms"]


def expected_gradnorms(
    model: nn.Module,
    images: Tensor,
    targets: Tensor,
    weights: Tensor,
    p: Tensor,
    signs: Tensor,
    *,
    config: GradNormConfig = GradNormConfig(),
    loss_fn: LossFn | None = None,
) -> Tensor:
    """Estimate of ``Σ_k p_k ‖∇θ ℓ(y_k, f(x_b))‖²`` per image from ``R + 1`` products.

    Parameters
    ----------
    model, images, targets, weights, config, loss_fn
        As in :func:`eglpp.gradnorm.per_example_gradnorms`.
    p : Tensor (B, K)
        Non-negative weights p(j|i) of the K targets.
    signs : Tensor (B, R, K)
        ±1 probes (R may be 0: then only the mean-cotangent term, a lower bound).

    Returns
    -------
    Tensor (B,)
    """
    B, K = targets.shape[:2]
    if p.shape != (B, K) or signs.dim() != 3 or signs.shape[0] != B or signs.shape[2] != K:
        raise ValueError(
            f"p must be (B={B}, K={K}) and signs (B, R, K), got {tuple(p.shape)} and "
            f"{tuple(signs.shape)}"
        )
    loss_fn = loss_fn or _default_loss()
    R = signs.shape[1]
    args = (targets, weights.to(targets.dtype), p.to(targets.dtype), signs.to(targets.dtype))
    total = args[2].sum(1)  # (B,)
    if config.method == "hooks":
        from eglpp.gradnorm_hooks import hook_cotangent_norms

        def make(heatmaps: Tensor) -> Tensor:  # (B, S, J, h, w) -> (R + 1, B, S, J, h, w)
            vecs = vmap(lambda h, *a: _probe_vectors(loss_fn, h[None], *a))(heatmaps, *args)
            return vecs.transpose(0, 1).reshape(R + 1, *heatmaps.shape)

        norms = hook_cotangent_norms(
            model, images, make, params=config.params, m_chunk=config.k_chunk
        )  # (R + 1, B)
        return total * norms[0] + (norms[1:].mean(0) if R else 0.0)
    chosen, forward_one = functional_forward(model, images, config.params)

    def per_image(image: Tensor, tgt: Tensor, wgt: Tensor, pk: Tensor, eps: Tensor) -> Tensor:
        heatmaps, vjp_fn = vjp(lambda prm: forward_one(prm, image), chosen)
        vecs = _probe_vectors(loss_fn, heatmaps, tgt, wgt, pk, eps)
        (grads,) = vmap(vjp_fn)(vecs.reshape(-1, *heatmaps.shape))
        norms = sum(g.pow(2).flatten(1).sum(1) for g in grads.values())  # (R + 1,)
        spread = norms[1:].mean() if eps.shape[0] else norms.new_zeros(())
        return pk.sum() * norms[0] + spread

    n_params = sum(t.numel() for t in chosen.values())
    b_step, _ = config.chunks(B, R + 1, n_params)
    with eval_mode(model):
        return torch.cat(
            [
                vmap(per_image)(images[i : i + b_step], *(a[i : i + b_step] for a in args))
                for i in range(0, B, b_step)
            ]
        )


def _probe_vectors(
    loss_fn: LossFn, heatmaps: Tensor, tgt: Tensor, wgt: Tensor, pk: Tensor, eps: Tensor
) -> Tensor:
    """The mean cotangent ``c̄`` and the R probes ``Σ_k ε_rk √p_k d_k`` of one image: (R + 1, n)."""
    cots = cotangents(loss_fn, heatmaps, tgt, wgt).flatten(1)  # (K, n)
    mean = (pk @ cots) / pk.sum().clamp_min(1e-30)  # (n,)
    probes = (eps * pk.sqrt()) @ (cots - mean)  # (R, n)
    return torch.cat([mean[None], probes])


def expected_pair_gradnorms(
    model: nn.Module,
    images,
    targets_labelled,
    weights_labelled,
    neighbours: np.ndarray,
    p: np.ndarray,
    *,
    n_probes: int = 4,
    seed: int = 0,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
    config: GradNormConfig = GradNormConfig(),
    loss_fn: LossFn | None = None,
) -> np.ndarray:
    """EGL++ scores ``Σ_j p(j|i) ‖∇θ ℓ(y_j, f(x_i))‖²`` (U,) with ``n_probes + 1`` products each.

    Arguments as :func:`eglpp.gradnorm.pair_gradnorms`, plus ``p`` (U, K), the probe count and
    the seed of the signs (drawn for the whole pool at once, so batching does not change them).
    """
    p = np.asarray(p, dtype=np.float64)
    if p.shape != np.shape(neighbours) or (p < 0).any():
        raise ValueError(f"p must be non-negative with the shape of neighbours, got {p.shape}")
    if n_probes < 0:
        raise ValueError(f"n_probes must be non-negative, got {n_probes}")
    U, K = p.shape
    gen = torch.Generator().manual_seed(seed)
    signs = torch.randint(0, 2, (U, n_probes, K), generator=gen).float() * 2 - 1
    out = np.zeros(U, dtype=np.float64)
    for rows, batch, y, w in pool_batches(
        images, targets_labelled, weights_labelled, neighbours, batch_size=batch_size, device=device
    ):
        pk = torch.as_tensor(p[rows], dtype=torch.float32, device=batch.device)
        s = expected_gradnorms(
            model, batch, y, w, pk, signs[rows].to(batch.device), config=config, loss_fn=loss_fn
        )
        out[rows] = s.double().cpu().numpy()
    return out
