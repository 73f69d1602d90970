"""t-SNE conditional probabilities p(j|i) of unlabelled embeddings to labelled ones (Eq. 13).

For each unlabelled embedding ``z_i`` and labelled embedding ``z_j``

.. math::

    p_{j|i} = \\frac{\\exp(-\\beta_i \\lVert z_i - z_j \\rVert^2)}
                   {\\sum_{l \\in L} \\exp(-\\beta_i \\lVert z_i - z_l \\rVert^2)},
    \\qquad \\beta_i = \\frac{1}{2 \\sigma_i^2},

with ``β_i`` found by bisection so that the perplexity ``2^{H(P_i)}`` (entropy in bits, as t-SNE
defines it; identical to ``e^{H}`` with the entropy in nats) equals the target. The bisection is
the one of scikit-learn's ``_binary_search_perplexity`` and openTSNE's
``compute_gaussian_perplexity`` (start at ``β = 1``, double / halve until the target is bracketed,
then bisect; stop when the entropy is within ``tol`` nats), vectorised over rows and computed with
the row's smallest distance subtracted, so that no row underflows.

Calibration set (``calibration``):

- ``"all"``: the normaliser of Eq. 13 runs over every labelled point, as the paper writes it;
  the bisection's cost grows with ``|U|·|L|``.
- ``"neighbours"``: as Barnes-Hut t-SNE does, only the ``n_calibration`` nearest labelled points
  (default ``max(k, ⌈3·perplexity⌉)``) enter the normaliser: the bisection's cost grows with
  ``|U|·n_calibration``; the points left out carry negligible mass when
  ``n_calibration ≥ 3·perplexity``.

Either way the unlabelled points are processed in chunks of ``chunk_size`` rows (converted to
float64 one chunk at a time), each chunk written into outputs allocated once: the memory is the
``(U, k)`` outputs plus ``chunk_size × |L|`` per chunk, never ``|U|·|L|``.

The ``k`` most probable neighbours are kept (Eq. 12's top-k). Their probabilities sum to less
than one; ``renormalise=True`` divides by that sum (then the score is an expectation over the
top-k only). The default keeps Eq. 13's values.

``entropy="reference"`` reproduces the authors' code, which computes the entropy in nats but
targets ``log2(perplexity)``: the effective perplexity is ``e^{log2(perplexity)}`` (≈ 75 for 20).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

__all__ = [
    "AffinityConfig",
    "Affinities",
    "calibrate_perplexity",
    "nearest_labelled",
    "tsne_affinities",
]


@dataclass(frozen=True)
class AffinityConfig:
    """Hyperparameters of the EGL++ neighbourhood (Eqs. 12–13)."""

    perplexity: float = 20.0  # target 2^H(P_i), entropy in bits (the paper: 20)
    k: int = 30  # neighbours kept per unlabelled point (the paper: 30); clamped to |L|
    calibration: str = "all"  # "all" labelled points or the "neighbours" (Barnes-Hut style)
    n_calibration: int | None = (
        None  # neighbours for calibration="neighbours"; None: max(k, 3·perp)
    )
    renormalise: bool = False  # divide the top-k probabilities by their sum
    entropy: str = "bits"  # "bits" (t-SNE) or "reference" (ln entropy vs log2 target, ~75 for 20)
    tol: float = 1e-5  # bisection stops when |H − H_target| ≤ tol (nats)
    max_iter: int = 200  # bisection steps per row
    chunk_size: int | None = None  # unlabelled rows per chunk; None: about 2^22 distances a chunk

    def __post_init__(self) -> None:
        if not (isinstance(self.perplexity, (int, float)) and self.perplexity > 0):
            raise ValueError(f"perplexity must be a positive number, got {self.perplexity!r}")
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise ValueError(f"k must be a positive integer, got {self.k!r}")
        if self.calibration not in ("all", "neighbours"):
            raise ValueError(f"calibration must be 'all' or 'neighbours', got {self.calibration!r}")
        if self.n_calibration is not None and self.n_calibration < 1:
            raise ValueError(f"n_calibration must be positive, got {self.n_calibration!r}")
        if self.entropy not in ("bits", "reference"):
            raise ValueError(f"entropy must be 'bits' or 'reference', got {self.entropy!r}")
        if not self.tol > 0:
            raise ValueError(f"tol must be positive, got {self.tol!r}")
        if self.max_iter < 1:
            raise ValueError(f"max_iter must be at least 1, got {self.max_iter!r}")
        if self.chunk_size is not None and self.chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, got {self.chunk_size!r}")


class Affinities(NamedTuple):
    """Top-k labelled neighbours of each unlabelled point and their p(j|i)."""

    neighbours: np.ndarray  # (U, K) int64 positions in the labelled set, nearest first
    p: np.ndarray  # (U, K) float64 p(j|i) (renormalised over the K if configured)
    beta: np.ndarray  # (U,) float64 precision 1 / (2 σ_i²) of each row
    sq_distances: np.ndarray  # (U, K) float64 squared Euclidean distances


def _target_entropy(perplexity: float, entropy: str) -> float:
    """Target entropy in nats: ln(perp) for t-SNE, log2(perp) for the reference code's mix."""
    return math.log(perplexity) if entropy == "bits" else math.log2(perplexity)


def calibrate_perplexity(
    sq_distances: torch.Tensor | np.ndarray,
    perplexity: float,
    *,
    tol: float = 1e-5,
    max_iter: int = 200,
    entropy: str = "bits",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Row-wise Gaussian conditional probabilities at a target perplexity (Eq. 13).

    Parameters
    ----------
    sq_distances : (N, M) tensor or array
        Squared distances of each row's point to its M candidates (all of them enter the
        normaliser).
    perplexity : float
        Target ``2^H`` with H in bits (``entropy="bits"``).
    tol, max_iter : float, int
        Bisection tolerance on the entropy (nats) and maximum number of steps.
    entropy : {"bits", "reference"}
        See the module docstring.

    Returns
    -------
    p : (N, M) float64 tensor
        Each row sums to one.
    beta : (N,) float64 tensor
        ``1 / (2 σ_i²)``; 0 (p uniform, at once) for a row that no β calibrates: every
        candidate at the same distance (identical embeddings, one labelled point), or a target
        perplexity the M candidates cannot reach (≥ M).
    """
    d = torch.as_tensor(sq_distances).to(torch.float64)
    if d.ndim != 2:
        raise ValueError(f"sq_distances must be 2-D (N, M), got shape {tuple(d.shape)}")
    if d.shape[1] == 0:
        raise ValueError("sq_distances has no candidates (M = 0)")
    if not torch.isfinite(d).all() or (d < 0).any():
        raise ValueError("sq_distances must be finite and non-negative")
    N = d.shape[0]
    d = d - d.min(dim=1, keepdim=True).values  # shift: p and H are unchanged, no underflow
    target = _target_entropy(perplexity, entropy)
    beta = torch.ones(N, dtype=torch.float64, device=d.device)
    lo = torch.full_like(beta, -math.inf)
    hi = torch.full_like(beta, math.inf)
    stuck = (d.max(dim=1).values == 0) | (target >= math.log(d.shape[1]) - tol)
    beta[stuck] = 0.0  # H cannot reach the target: the uniform p is the nearest (H = ln M)
    rows = torch.arange(N, device=d.device)[~stuck]  # rows still searching
    for _ in range(max_iter):
        if rows.numel() == 0:
            break
        dr, b = d[rows], beta[rows]
        p = torch.exp(-dr * b[:, None])
        z = p.sum(dim=1)
        h = torch.log(z) + b * (p * dr).sum(dim=1) / z
        diff = h - target
        searching = diff.abs() > tol
        rows, b, diff = rows[searching], b[searching], diff[searching]
        up = diff > 0  # entropy too high: sharpen
        l, u = lo[rows], hi[rows]
        l = torch.where(up, b, l)
        u = torch.where(up, u, b)
        b_up = torch.where(torch.isinf(u), b * 2.0, (b + u) / 2.0)
        b_down = torch.where(torch.isinf(l), b / 2.0, (b + l) / 2.0)
        lo[rows], hi[rows], beta[rows] = l, u, torch.where(up, b_up, b_down)
    p = torch.exp(-d * beta[:, None])
    return p / p.sum(dim=1, keepdim=True), beta


def _embeddings(
    embeddings_unlabelled: np.ndarray | torch.Tensor,
    embeddings_labelled: np.ndarray | torch.Tensor,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The unlabelled embeddings as given (converted chunk by chunk), the labelled in float64.

    ``zu`` is not copied (a numpy array is wrapped): a float64 copy of the whole pool would
    grow with ``|U|``.
    """
    zu, zl = torch.as_tensor(embeddings_unlabelled), torch.as_tensor(embeddings_labelled)
    for name, t in (("embeddings_unlabelled", zu), ("embeddings_labelled", zl)):
        if t.ndim != 2:
            raise ValueError(f"{name} must be 2-D (n, C), got shape {tuple(t.shape)}")
    if zu.shape[1] != zl.shape[1]:
        raise ValueError(
            f"embeddings_unlabelled has {zu.shape[1]} channels, embeddings_labelled {zl.shape[1]}"
        )
    if zl.shape[0] == 0:
        raise ValueError("embeddings_labelled is empty: no labelled points to compare with")
    zl = zl.to(device=device, dtype=torch.float64)
    if not torch.isfinite(zl).all():
        raise ValueError("embeddings_labelled contains NaN or infinite values")
    return zu, zl


def _chunks(zu: torch.Tensor, step: int, device: torch.device):
    """Yield ``(start, stop, rows)``: each chunk of ``zu`` in float64 on ``device``, checked."""
    for start in range(0, zu.shape[0], step):
        rows = zu[start : start + step].to(device=device, dtype=torch.float64)
        if not torch.isfinite(rows).all():
            raise ValueError("embeddings_unlabelled contains NaN or infinite values")
        yield start, start + rows.shape[0], rows


def _chunk_rows(chunk_size: int | None, n_labelled: int) -> int:
    return chunk_size if chunk_size is not None else max(1, (1 << 22) // max(n_labelled, 1))


def _sq_dist(a: torch.Tensor, b: torch.Tensor, b_sq: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances (n, m) as ‖a‖² + ‖b‖² − 2 a·b (one fused matmul)."""
    d = torch.addmm(b_sq[None, :], a, b.T, alpha=-2.0)
    return d.add_((a * a).sum(1, keepdim=True)).clamp_min_(0.0)


def _outputs(U: int, k: int) -> tuple[Affinities, Affinities]:
    """Preallocated (U, k) outputs as numpy arrays and torch views of the same memory.

    Every chunk is copied into them: nothing grows with the number of chunks, and no
    concatenation doubles the outputs at the end.
    """
    arrays = Affinities(
        neighbours=np.empty((U, k), dtype=np.int64),
        p=np.empty((U, k)),
        beta=np.empty(U),
        sq_distances=np.empty((U, k)),
    )
    return arrays, Affinities(*(torch.from_numpy(a) for a in arrays))


def nearest_labelled(
    embeddings_unlabelled: np.ndarray | torch.Tensor,
    embeddings_labelled: np.ndarray | torch.Tensor,
    k: int,
    *,
    chunk_size: int | None = None,
    device: str | torch.device = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest labelled points of every unlabelled point, in chunks.

    Returns ``(sq_distances (U, k) float64, neighbours (U, k) int64)``, nearest first; the
    working memory is ``chunk_size × |L|`` whatever ``|U|``, besides the (U, k) outputs.
    """
    device = torch.device(device)
    zu, zl = _embeddings(embeddings_unlabelled, embeddings_labelled, device)
    U, L = zu.shape[0], zl.shape[0]
    k = min(k, L)
    zl_sq = (zl * zl).sum(1)
    out, views = _outputs(U, k)
    for start, stop, rows in _chunks(zu, _chunk_rows(chunk_size, L), device):
        val, ind = torch.topk(_sq_dist(rows, zl, zl_sq), k, dim=1, largest=False, sorted=True)
        views.sq_distances[start:stop].copy_(val)
        views.neighbours[start:stop].copy_(ind)
    return out.sq_distances, out.neighbours


def tsne_affinities(
    embeddings_unlabelled: np.ndarray | torch.Tensor,
    embeddings_labelled: np.ndarray | torch.Tensor,
    config: AffinityConfig = AffinityConfig(),
    *,
    device: str | torch.device = "cpu",
) -> Affinities:
    """p(j|i) of each unlabelled point to its top-k labelled neighbours (Eqs. 12–13).

    Parameters
    ----------
    embeddings_unlabelled : (U, C) array
    embeddings_labelled : (L, C) array
    config : AffinityConfig
    device : torch device for the distance chunks and the bisection

    Returns
    -------
    Affinities
        ``neighbours`` (U, K), ``p`` (U, K), ``beta`` (U,), ``sq_distances`` (U, K) with
        ``K = min(k, L)``.

    Examples
    --------
    >>> zl = np.array([[0.0], [1.0], [5.0]])
    >>> a = tsne_affinities(np.array([[0.9]]), zl, AffinityConfig(perplexity=2, k=2))
    >>> a.neighbours.tolist()
    [[1, 0]]
    """
    dev = torch.device(device)
    zu, zl = _embeddings(embeddings_unlabelled, embeddings_labelled, dev)
    U, L = zu.shape[0], zl.shape[0]
    k = min(config.k, L)
    neighbours = config.calibration == "neighbours"  # calibrate on the n nearest only
    n_cal = config.n_calibration or max(config.k, math.ceil(3 * config.perplexity))
    n = min(max(n_cal, k), L)
    zl_sq = (zl * zl).sum(1)
    out, views = _outputs(U, k)
    for start, stop, rows in _chunks(zu, _chunk_rows(config.chunk_size, L), dev):
        d = _sq_dist(rows, zl, zl_sq)  # (chunk, L)
        if neighbours:
            d, ind = torch.topk(d, n, dim=1, largest=False, sorted=True)  # (chunk, n)
        p, beta = calibrate_perplexity(
            d, config.perplexity, tol=config.tol, max_iter=config.max_iter, entropy=config.entropy
        )
        if not neighbours:  # Eq. 13 over all of L, then the k nearest
            d, ind = torch.topk(d, k, dim=1, largest=False, sorted=True)
            p = torch.gather(p, 1, ind)
        views.p[start:stop].copy_(p[:, :k])
        views.beta[start:stop].copy_(beta)
        views.sq_distances[start:stop].copy_(d[:, :k])
        views.neighbours[start:stop].copy_(ind[:, :k])
    if config.renormalise and out.p.size:
        np.divide(out.p, out.p.sum(axis=1, keepdims=True), out=out.p)
    return out
