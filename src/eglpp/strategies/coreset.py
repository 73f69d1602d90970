"""Core-set (Sener & Savarese): k-center greedy on the pooled embeddings.

The centres start as the labelled set; each step adds the unlabelled point farthest (Euclidean)
from its nearest centre. This strategy selects greedily, so it overrides ``select``; its
``score`` is the first step's criterion, each point's distance to the nearest labelled point.

References
----------
Sener, O. and Savarese, S. "Active Learning for Convolutional Neural Networks: A Core-Set
Approach." ICLR 2018.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from eglpp.affinity import nearest_labelled
from eglpp.selection import check_budget
from eglpp.strategies.base import PoolInputs, Strategy

__all__ = ["CoreSet", "k_center_greedy"]


def _min_sq_dist_to_labelled(zu: np.ndarray, zl: np.ndarray, device: str) -> np.ndarray:
    if zl.shape[0] == 0:
        return np.full(zu.shape[0], np.inf)
    return nearest_labelled(zu, zl, 1, device=device)[0][:, 0]


def k_center_greedy(
    embeddings_unlabelled: np.ndarray,
    embeddings_labelled: np.ndarray,
    budget: int,
    rng: np.random.Generator,
    *,
    device: str = "cpu",
) -> np.ndarray:
    """Greedy k-center: ``budget`` unlabelled points, each the farthest from all centres so far.

    Parameters
    ----------
    embeddings_unlabelled : (U, C) array
    embeddings_labelled : (L, C) array
        The initial centres; with L = 0 the first centre is drawn at random.
    budget : int
    rng : numpy.random.Generator
        Breaks ties between equally far points (and draws the first centre when L = 0).
    device : str
        Torch device for the distances.

    Returns
    -------
    query_indices : (budget,) int64, in the order they were picked.

    Examples
    --------
    >>> zu = np.array([[1.0], [2.0], [10.0]])
    >>> k_center_greedy(zu, np.array([[0.0]]), 2, np.random.default_rng(0)).tolist()
    [2, 1]
    """
    zu = np.asarray(embeddings_unlabelled, dtype=np.float64)
    zl = np.asarray(embeddings_labelled, dtype=np.float64)
    if zu.ndim != 2 or zl.ndim != 2 or zu.shape[1] != zl.shape[1]:
        raise ValueError(
            f"embeddings must be (U, C) and (L, C) with the same C, got {zu.shape} and {zl.shape}"
        )
    check_budget(budget, zu.shape[0])
    dev = torch.device(device)
    pool = torch.as_tensor(zu, device=dev)
    pool_sq = (pool * pool).sum(1)
    min_d = torch.as_tensor(_min_sq_dist_to_labelled(zu, zl, device), device=dev)
    chosen = np.empty(budget, dtype=np.int64)
    for step in range(budget):
        best = torch.nonzero(min_d == min_d.max()).flatten().cpu().numpy()
        pick = int(best[rng.integers(best.size)]) if best.size > 1 else int(best[0])
        chosen[step] = pick
        centre = pool[pick]
        d = (pool_sq + centre @ centre - 2.0 * pool @ centre).clamp_min(0.0)
        min_d = torch.minimum(min_d, d)
        min_d[pick] = -1.0  # never picked twice, even among duplicates at distance 0
    return chosen


@dataclass(frozen=True)
class CoreSet(Strategy):
    """k-center greedy on embeddings, centres initialised with the labelled set."""

    name: ClassVar[str] = "coreset"
    needs: ClassVar[frozenset[str]] = frozenset({"embeddings"})

    def score(self, inputs: PoolInputs, rng: np.random.Generator) -> np.ndarray:
        """Euclidean distance of each unlabelled point to its nearest labelled point."""
        self.check_inputs(inputs)
        self._check_rng(rng)
        zu, zl = inputs.embeddings_unlabelled, inputs.embeddings_labelled
        return np.sqrt(_min_sq_dist_to_labelled(zu, zl, inputs.device))

    def select(self, inputs: PoolInputs, budget: int, rng: np.random.Generator) -> np.ndarray:
        self.check_inputs(inputs)
        self._check_rng(rng)
        return k_center_greedy(
            inputs.embeddings_unlabelled,
            inputs.embeddings_labelled,
            budget,
            rng,
            device=inputs.device,
        )

    def select_explained(
        self, inputs: PoolInputs, budget: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Greedy selection; the scores saved are the distances to the labelled set."""
        return self.select(inputs, budget, rng), self.score(inputs, rng), {}
