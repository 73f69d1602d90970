"""EGL++ (Eqs. 12–13): expected gradient length with labelled neighbours as candidate labels.

.. math::

    s(x_i) = \\sum_{j \\in \\text{top-}k(i)} p(y_j \\mid x_i)\\,
             \\lVert \\nabla_\\theta \\ell(y_j, f(x_i; \\hat\\theta)) \\rVert^2

``p(y_j | x_i)`` is the t-SNE conditional probability of labelled embedding ``z_j`` given
unlabelled ``z_i`` (:func:`eglpp.affinity.tsne_affinities`, Eq. 13); the squared gradient norms
come from the loop's ``PoolInputs.pair_gradnorms`` (:mod:`eglpp.gradnorm`), with the neighbour's
label being its ground truth (default, the paper's text) or the model's prediction for it (the
reference code). :func:`egl_pp` is Eq. 12 itself; :class:`EGLPlusPlus` finds the neighbours and
their probabilities and asks for the norms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from eglpp.affinity import AffinityConfig, tsne_affinities
from eglpp.strategies.base import PoolInputs, Strategy

__all__ = ["EGLPlusPlus", "egl_pp"]

LABEL_SOURCES = ("ground_truth", "prediction")


def egl_pp(p: np.ndarray, gradnorms: np.ndarray) -> np.ndarray:
    """EGL++'s score of each unlabelled image (Eq. 12).

    .. math::

        s(x_i) = \\sum_{j=1}^{K} p(y_j \\mid x_i)\\,
                 \\lVert \\nabla_\\theta \\ell(y_j, f(x_i; \\hat\\theta)) \\rVert^2

    Parameters
    ----------
    p : (U, K) array
        ``p(y_j | x_i)`` of each unlabelled image's K labelled neighbours (Eq. 13).
    gradnorms : (U, K) array
        The squared gradient norms of the loss with each neighbour's label as the target.

    Returns
    -------
    (U,) float64 scores.

    Examples
    --------
    >>> egl_pp(np.array([[0.75, 0.25]]), np.array([[2.0, 4.0]])).tolist()
    [2.5]
    """
    p, g = np.asarray(p, dtype=np.float64), np.asarray(gradnorms, dtype=np.float64)
    if p.shape != g.shape or p.ndim != 2:
        raise ValueError(f"p and gradnorms must both be (U, K), got {p.shape} and {g.shape}")
    if not np.isfinite(g).all() or (g < 0).any():
        raise ValueError("squared gradient norms must be finite and non-negative")
    return (p * g).sum(axis=1)


@dataclass(frozen=True)
class EGLPlusPlus(Strategy):
    """EGL++: p-weighted squared gradient norms over the top-k labelled neighbours."""

    perplexity: float = 20.0  # target 2^H, entropy in bits (paper: 20)
    k: int = 30  # neighbours per unlabelled image (paper: 30)
    renormalise: bool = False  # divide the top-k p(j|i) by their sum
    calibration: str = "all"  # "all" labelled points (Eq. 13) or "neighbours" (Barnes-Hut)
    entropy: str = "bits"  # "bits" (t-SNE) or "reference" (ln vs log2: effective perplexity ~75)
    label_source: str = "ground_truth"  # neighbour labels: "ground_truth" or "prediction"
    tol: float = 1e-5  # bisection tolerance on the entropy (nats)
    estimator: str = "exact"  # "exact" (K products per image) or "approx" (eglpp.gradnorm.approx:
    # the n_exact most probable neighbours exactly, the rest by their p-weighted mean cotangent
    # plus n_probes random-sign probes; both counts are eglpp.scoring.ScoringConfig's)

    name: ClassVar[str] = "egl++"

    def __post_init__(self) -> None:
        if self.label_source not in LABEL_SOURCES:
            raise ValueError(
                f"label_source must be one of {LABEL_SOURCES}, got {self.label_source!r}"
            )
        if self.estimator not in ("exact", "approx"):
            raise ValueError(f"estimator must be 'exact' or 'approx', got {self.estimator!r}")
        self.affinity_config()  # validates the affinity hyperparameters

    @property
    def needs(self) -> frozenset[str]:  # type: ignore[override]
        """Embeddings, plus ``pair_gradnorms`` (exact) or ``expected_gradnorms`` (approx)."""
        if self.estimator == "exact":
            return frozenset({"embeddings", "pair_gradnorms"})
        return frozenset({"embeddings", "expected_gradnorms"})

    def affinity_config(self) -> AffinityConfig:
        return AffinityConfig(
            perplexity=self.perplexity,
            k=self.k,
            calibration=self.calibration,
            renormalise=self.renormalise,
            entropy=self.entropy,
            tol=self.tol,
        )

    def explain(
        self, inputs: PoolInputs, rng: np.random.Generator
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Scores plus ``neighbours`` (U, K), ``p`` (U, K), ``beta`` (U,) and, for the exact
        estimator, ``gradnorms`` (U, K)."""
        self.check_inputs(inputs)
        self._check_rng(rng)
        aff = tsne_affinities(
            inputs.embeddings_unlabelled,
            inputs.embeddings_labelled,
            self.affinity_config(),
            device=inputs.device,
        )
        details = {"neighbours": aff.neighbours, "p": aff.p, "beta": aff.beta}
        if self.estimator == "approx":
            s = inputs.expected_gradnorms(aff.neighbours, aff.p, self.label_source)
            s = np.asarray(s, dtype=np.float64)
            if s.shape != (inputs.n_unlabelled,) or not np.isfinite(s).all():
                raise ValueError(
                    f"expected_gradnorms returned shape {s.shape} (finite values expected), "
                    f"expected ({inputs.n_unlabelled},)"
                )
            return s, details
        g = np.asarray(inputs.pair_gradnorms(aff.neighbours, self.label_source), dtype=np.float64)
        if g.shape != aff.neighbours.shape:
            raise ValueError(
                f"pair_gradnorms returned shape {g.shape}, expected {aff.neighbours.shape}"
            )
        return egl_pp(aff.p, g), {**details, "gradnorms": g}

    def score(self, inputs: PoolInputs, rng: np.random.Generator) -> np.ndarray:
        return self.explain(inputs, rng)[0]
