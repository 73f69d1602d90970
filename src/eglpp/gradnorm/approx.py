"""A cheaper EGL++ inner sum: fewer than K vector-Jacobian products per image.

EGL++ needs ``s_i = Σ_k p_k ‖Jᵀ c_k‖²`` (Eq. 12) where ``Jᵀ`` is the image's vector-Jacobian
product and ``c_k`` the loss cotangent for neighbour k. Split the K neighbours into the head H,
the ``n_exact`` most probable ones, and the tail T. With ``P_T = Σ_{k∈T} p_k``, the tail's
p-weighted mean cotangent ``c̄ = Σ_{k∈T} p_k c_k / P_T`` and its deviations ``d_k = c_k − c̄``
(whose p-weighted sum is zero, so the cross term vanishes),

.. math::

    s_i = \\sum_{k \\in H} p_k \\lVert J^\\top c_k \\rVert^2
        + P_T \\lVert J^\\top \\bar c \\rVert^2
        + \\sum_{k \\in T} p_k \\lVert J^\\top d_k \\rVert^2 .

The head and the tail-mean terms are computed exactly (``n_exact + 1`` products); the tail's
spread term equals ``E_ε ‖Jᵀ Σ_{k∈T} ε_k √p_k d_k‖²`` for independent random signs ε
(Rademacher: ``E[ε_k ε_l] = δ_kl``) and is estimated without bias from R probes, or left out
(R = 0: a lower bound, deterministic). ``n_exact = K`` is the exact sum; ``n_exact = 0`` puts
every neighbour in the tail.

Which setting keeps the ranking depends on the model: on an untrained network the mean
cotangent carries most of the sum and ``n_exact = 0`` with 4 probes ranks like the exact score,
while on a trained one (predictions close to the neighbours' labels) the spread dominates and
the probes' variance costs more than the bias of dropping the spread of a small tail.
On two trained models (``benchmarks/results/README.md``) the mean cotangent with 4 probes
ranked with Spearman 0.88–0.97 against exact, 12 neighbours exactly with no probes 0.996–0.999.
``benchmarks/egl_speed.py`` measures the rank agreement; measure rather than assume.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
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
from eglpp.gradnorm.hooks import hook_cotangent_norms
from eglpp.gradnorm.plan import describe, resolve_method
from eglpp.gradnorm.pool import Progress, pool_batches

__all__ = ["DEFAULT_N_EXACT", "expected_gradnorms", "expected_pair_gradnorms", "probe_signs"]

#: Neighbours taken exactly by default: the smallest setting that kept Spearman ≥ 0.98 and
#: ≥ 90 % top-10 % overlap with exact EGL++ (K = 30) on both trained models measured
#: (``benchmarks/results/egl_speed_cpu*.json``).
DEFAULT_N_EXACT = 12


def expected_gradnorms(
    model: nn.Module,
    images: Tensor,
    targets: Tensor,
    weights: Tensor,
    p: Tensor,
    signs: Tensor,
    *,
    n_exact: int = DEFAULT_N_EXACT,
    config: GradNormConfig = GradNormConfig(),
    loss_fn: LossFn,
) -> Tensor:
    """Estimate of ``Σ_k p_k ‖∇θ ℓ(y_k, f(x_b))‖²`` per image from ``n_exact + 1 + R``
    products (see the module docstring).

    Parameters
    ----------
    model, images, targets, weights, config, loss_fn
        As in :func:`eglpp.gradnorm.per_example_gradnorms`.
    p : Tensor (B, K)
        Non-negative weights p(j|i) of the K targets.
    signs : Tensor (B, R, K)
        ±1 probes of the tail's spread (R may be 0: the spread is left out, a lower bound);
        probe r gives neighbour k the sign ``signs[b, r, k]``.
    n_exact : int
        Neighbours with the largest p taken exactly (ties by position); ``>= K``: exact.

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
    if n_exact < 0:
        raise ValueError(f"n_exact must be non-negative, got {n_exact}")
    m = min(n_exact, K)
    args = (targets, weights.to(targets.dtype), p.to(targets.dtype), signs.to(targets.dtype))
    return _expected_by_hooks(model, images, args, m, config, loss_fn)


def _expected_by_hooks(
    model: nn.Module,
    images: Tensor,
    args: tuple[Tensor, Tensor, Tensor, Tensor],
    m: int,
    config: GradNormConfig,
    loss_fn: LossFn,
) -> Tensor:
    """:func:`expected_gradnorms` through layer hooks (``config.method`` "hooks", or "auto"
    where it picks them; else :func:`_expected_by_vjp`): every image's head, tail-mean and
    probe vectors pulled back by :func:`~eglpp.gradnorm.hooks.hook_cotangent_norms`."""
    method, plan = resolve_method(model, images, config.method, config.params, config.prediction)
    if config.report is not None:
        config.report(describe(method, config.method, plan))
    if method == "vmap":
        return _expected_by_vjp(model, images, args, m, config, loss_fn)
    coef = torch.zeros(0)

    def make(heatmaps: Tensor, rows: slice) -> Tensor:  # (b, S, J, h, w) -> (M, b, S, J, h, w)
        nonlocal coef
        tgt, wgt, *rest = (a[rows] for a in args)
        cots = pair_cotangents(loss_fn, heatmaps, tgt, wgt)  # (b, K, ...)
        vecs, c = vmap(lambda ck, *a: _head_tail_vectors(ck, *a, m))(cots, *rest)
        coef = torch.cat([coef.to(c), c])  # (B, M) once every row is made
        return vecs.transpose(0, 1).reshape(-1, *heatmaps.shape)

    norms = hook_cotangent_norms(
        model,
        images,
        make,
        params=config.params,
        prediction=config.prediction,
        m_chunk=config.k_chunk,
        max_elements=config.budget(images.device),
        plan=plan,
    )  # (M, B)
    return (coef * norms.T).sum(1)


def _expected_by_vjp(
    model: nn.Module,
    images: Tensor,
    args: tuple[Tensor, Tensor, Tensor, Tensor],
    m: int,
    config: GradNormConfig,
    loss_fn: LossFn,
) -> Tensor:
    """:func:`expected_gradnorms` with torch.func: the loss cotangents of every (image,
    neighbour) pair from one plain forward, then one linearisation per image, its vectors'
    products vectorised, images in batches that fit ``config``'s memory budget."""
    targets, signs = args[0], args[3]
    B, K = targets.shape[:2]
    chosen, forward_one = functional_forward(model, images, config.params, config.prediction)

    def per_image(image: Tensor, cots: Tensor, pk: Tensor, eps: Tensor) -> Tensor:
        _, vjp_fn = vjp(lambda prm: forward_one(prm, image), chosen)
        vecs, coef = _head_tail_vectors(cots, pk, eps, m)
        (grads,) = vmap(vjp_fn)(vecs.reshape(-1, 1, *cots.shape[1:]))
        return coef @ sum(g.pow(2).flatten(1).sum(1) for g in grads.values())

    n_params = sum(t.numel() for t in chosen.values())
    n_vectors = m + (K > m) * (1 + signs.shape[1])
    b_step, _ = config.chunks(B, n_vectors, n_params, images.device)
    out = []
    with eval_mode(model):
        for i in range(0, B, b_step):
            tgt, wgt, pk, eps = (a[i : i + b_step] for a in args)
            with torch.no_grad():
                pred = prediction_of(model(images[i : i + b_step]), config.prediction)
            cots = pair_cotangents(loss_fn, pred, tgt, wgt)  # (b, K, S, J, h, w)
            out.append(vmap(per_image)(images[i : i + b_step], cots, pk, eps))
    return torch.cat(out)


def _head_tail_vectors(cots: Tensor, pk: Tensor, eps: Tensor, m: int) -> tuple[Tensor, Tensor]:
    """One image's vectors to pull back and their weights in the estimate: the ``m`` head
    cotangents (weights p_k), then, if the tail is not empty, its mean cotangent (weight P_T)
    and the R probes ``Σ_{k∈T} ε_rk √p_k d_k`` (weights 1/R). Returns (M, n) and (M,)."""
    cots = cots.flatten(1)  # (K, n): the image's loss cotangents
    K, R = cots.shape[0], eps.shape[0]
    order = torch.argsort(pk, descending=True, stable=True)
    head, tail = order[:m], order[m:]
    vecs, coef = [cots[head]], [pk[head]]
    if K > m:
        pt = pk[tail]
        total = pt.sum()
        mean = (pt @ cots[tail]) / total.clamp_min(1e-30)  # (n,)
        probes = (eps[:, tail] * pt.sqrt()) @ (cots[tail] - mean)  # (R, n)
        vecs += [mean[None], probes]
        coef += [total[None], pk.new_full((R,), 1.0 / max(R, 1))]
    return torch.cat(vecs), torch.cat(coef)


def probe_signs(n_rows: int, n_probes: int, k: int, seed: int) -> Tensor:
    """±1 probes (n_rows, n_probes, k) drawn from ``seed`` for a whole pool at once, so that
    batching or sharding its rows does not change them."""
    if n_probes < 0:
        raise ValueError(f"n_probes must be non-negative, got {n_probes}")
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 2, (n_rows, n_probes, k), generator=gen).float() * 2 - 1


def expected_pair_gradnorms(
    model: nn.Module,
    images: Tensor | np.ndarray | Iterable,
    targets_labelled: Tensor | np.ndarray,
    weights_labelled: Tensor | np.ndarray,
    neighbours: np.ndarray,
    p: np.ndarray,
    *,
    n_exact: int = DEFAULT_N_EXACT,
    n_probes: int = 0,
    seed: int = 0,
    signs: Tensor | None = None,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
    config: GradNormConfig = GradNormConfig(),
    loss_fn: LossFn,
    progress: Progress | None = None,
) -> np.ndarray:
    """EGL++ scores ``Σ_j p(j|i) ‖∇θ ℓ(y_j, f(x_i))‖²`` (U,) with ``n_exact + 1 + n_probes``
    products each (:func:`expected_gradnorms`).

    Arguments as :func:`eglpp.gradnorm.pool.pair_gradnorms`, plus ``p`` (U, K), the neighbours taken
    exactly, the probe count and the seed of the signs (:func:`probe_signs`, drawn for the
    whole pool at once, so batching does not change them), or the (U, R, K) ``signs``
    themselves (a shard's rows of the pool's signs); ``progress`` as in ``pair_gradnorms``.
    The defaults (``DEFAULT_N_EXACT`` exact, no probes) kept the exact ranking on trained
    models in ``benchmarks/egl_speed.py``.
    """
    p = np.asarray(p, dtype=np.float64)
    if p.shape != np.shape(neighbours) or (p < 0).any():
        raise ValueError(f"p must be non-negative with the shape of neighbours, got {p.shape}")
    if n_probes < 0 or n_exact < 0:
        raise ValueError(f"n_exact and n_probes must be non-negative, got {n_exact}, {n_probes}")
    U, K = p.shape
    signs = probe_signs(U, n_probes, K, seed) if signs is None else signs
    if signs.dim() != 3 or signs.shape[0] != U or signs.shape[2] != K:
        raise ValueError(f"signs must be (U={U}, R, K={K}), got {tuple(signs.shape)}")
    out = np.zeros(U, dtype=np.float64)
    for rows, batch, y, w in pool_batches(
        images, targets_labelled, weights_labelled, neighbours, batch_size=batch_size,
        device=device, progress=progress,
    ):  # fmt: skip
        pk = torch.as_tensor(p[rows], dtype=torch.float32, device=batch.device)
        eps = signs[rows].to(batch.device)
        s = expected_gradnorms(
            model, batch, y, w, pk, eps, n_exact=n_exact, config=config, loss_fn=loss_fn
        )
        out[rows] = s.double().cpu().numpy()
    return out
