"""How well EGL++'s approximate scores rank a pool: the exact scores of a sample beside them.

With ``estimator="approx"`` (:mod:`eglpp.gradnorm.approx`) and ``ScoringConfig.approx_check = N``,
N randomly chosen candidates are scored again exactly, with the same neighbours and p(j|i) (an
image's EGL++ score depends on that image and the labelled set only), and the two rankings are
compared on them: Spearman's rank correlation and the overlap of their top 10 %
(:func:`eglpp.stats.rank_agreement`). It costs about N exact scores and measures the
approximation where it is used, instead of assuming that a figure measured elsewhere
(``benchmarks/egl_speed.py``) carries over. ``eglpp run`` checks every cycle (saved as
``selection.npz`` details ``approx_check_*``), ``eglpp select`` once (``summary.json``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from eglpp.stats import rank_agreement
from eglpp.strategies.egl_pp import egl_pp

__all__ = ["check_needs", "approx_agreement"]


def check_needs(needs: frozenset[str], n_check: int) -> frozenset[str]:
    """``needs`` plus the exact ``pair_gradnorms`` the check uses, when a check is asked for a
    strategy that estimates its gradient norms.

    >>> sorted(check_needs(frozenset({"expected_gradnorms"}), 10))
    ['expected_gradnorms', 'pair_gradnorms']
    """
    if n_check and "expected_gradnorms" in needs:
        return needs | {"pair_gradnorms"}
    return needs


def approx_agreement(
    approx: np.ndarray,
    p: np.ndarray,
    neighbours: np.ndarray,
    exact_gradnorms: Callable[[np.ndarray], np.ndarray],
    rows: np.ndarray,
) -> dict:
    """Exact EGL++ (Eq. 12) of ``rows`` against their approximate scores.

    Parameters
    ----------
    approx : (U,) array
        The approximate scores of every candidate.
    p, neighbours : (U, K) arrays
        The strategy's p(j|i) and neighbours (positions in the labelled set).
    exact_gradnorms : callable
        ``exact_gradnorms(rows) -> (n, K)`` exact squared gradient norms of those candidates
        with ``neighbours[rows]``'s labels.
    rows : (n,) int array
        The sampled candidates.

    Returns
    -------
    dict with ``rows``, ``exact`` (n,) and :func:`~eglpp.stats.rank_agreement`'s entries.
    """
    rows = np.asarray(rows)
    exact = egl_pp(np.asarray(p)[rows], exact_gradnorms(rows))
    return {"rows": rows, "exact": exact, **rank_agreement(exact, np.asarray(approx)[rows])}
