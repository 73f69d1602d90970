"""The shared selector: scores in, ``query_indices`` out.

Every strategy except Core-set returns one score per unlabelled item; this module turns those
scores into the ``budget`` items to annotate. Ties are broken by the run's generator, so the
same seed always gives the same selection.
"""

from __future__ import annotations

import numpy as np

__all__ = ["select_top", "check_budget"]


def check_budget(budget: int, n_unlabelled: int) -> None:
    """Raise a clear error when ``budget`` is not a positive integer no larger than the pool."""
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)):
        raise TypeError(f"budget must be an integer, got {type(budget).__name__}")
    if budget < 1:
        raise ValueError(f"budget must be at least 1, got {budget}")
    if budget > n_unlabelled:
        raise ValueError(
            f"budget ({budget}) is larger than the unlabelled pool ({n_unlabelled} items)"
        )


def select_top(scores: np.ndarray, budget: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of the ``budget`` highest scores, ties broken at random by ``rng``.

    Parameters
    ----------
    scores : (n_unlabelled,) array of float
        One score per candidate; higher means more wanted. NaN or ±inf is an error.
    budget : int
        How many to select.
    rng : numpy.random.Generator
        Breaks ties; the same generator state gives the same selection.

    Returns
    -------
    query_indices : (budget,) int64 array
        Positions into ``scores``, highest score first.

    Examples
    --------
    >>> select_top(np.array([0.1, 0.9, 0.5]), 2, np.random.default_rng(0)).tolist()
    [1, 2]
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1:
        raise ValueError(f"scores must be 1-D (n_unlabelled,), got shape {scores.shape}")
    if not np.isfinite(scores).all():  # inf would outrank every real score, -inf never win
        n_nan, n_inf = int(np.isnan(scores).sum()), int(np.isinf(scores).sum())
        first = int(np.flatnonzero(~np.isfinite(scores))[0])
        raise ValueError(
            f"scores contain {n_nan} NaN and {n_inf} infinite values (first at position "
            f"{first}: {scores[first]}); a strategy's scores must be finite"
        )
    check_budget(budget, scores.shape[0])
    tiebreak = rng.random(scores.shape[0])
    order = np.lexsort((tiebreak, -scores))  # last key is primary: highest score first
    return order[:budget].astype(np.int64)
