"""Regression strategies by name: one ``select(state, budget, rng)`` for all of them.

The loop fits the ensemble, predicts on the unlabelled pool, and passes a :class:`PoolState`;
every strategy returns ``query_indices`` (positions in the unlabelled pool). The loop never
branches on the strategy.

Names
-----
- ``egl`` (Eq. 7 / 10, the paper's form, top-``budget``), ``emcm`` (Eq. 2),
  ``variance`` (Eq. 11), ``random``;
- named variants of those three scores, by suffix:
  ``-diverse``: the batch is built by simulating the sequential policy with the ensemble's
  Kalman update (:mod:`eglpp.regression.batch`, after Cai, Zhang & Zhang 2017);
  ``-density``: the score is multiplied by the pool density (information density,
  :func:`eglpp.regression.strategies.pool_density`), which damps isolated high-leverage rows;
  ``-diverse-density``: both;
- scikit-activeml's: ``gsx``, ``gsy``, ``igs`` (greedy sampling in x, y, both), ``qbc``,
  ``emvr`` (expected model variance reduction), ``kldiv`` (KL-divergence maximisation),
  ``skal-emc`` (its expected model change), see :mod:`eglpp.regression.skactiveml_adapter`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eglpp.regression.batch import conditioned_batch
from eglpp.regression.pool_state import PoolState, RegressionStrategy
from eglpp.regression.skactiveml_adapter import SKACTIVEML_NAMES, SkactivemlStrategy
from eglpp.regression.strategies import egl, emcm, pool_density, predictive_variance
from eglpp.selection import select_top

__all__ = ["PoolState", "RegressionStrategy", "ScoreStrategy", "strategy_names", "make_strategy"]

_BASES = ("egl", "emcm", "variance")
_SUFFIXES = ("", "-diverse", "-density", "-diverse-density")


@dataclass(frozen=True)
class ScoreStrategy:
    """A score of :mod:`eglpp.regression.strategies`, top-``budget`` or conditioned batch."""

    name: str
    score: str  # egl | emcm | variance | random
    diverse: bool = False
    density: bool = False

    def scores(self, state: PoolState, rng: np.random.Generator) -> np.ndarray:
        """(U,) scores of plain top-``budget`` selection (before any density weight)."""
        p = state.predictive
        if self.score == "egl":
            return egl(p.grad_sq, p.mean, p.var, p.f)
        if self.score == "emcm":
            return emcm(np.sqrt(p.grad_sq), p.mean, p.f)
        if self.score == "variance":
            return predictive_variance(p.mean, p.var)
        return rng.random(len(p.f))

    def select(self, state: PoolState, budget: int, rng: np.random.Generator) -> np.ndarray:
        weights = pool_density(state.x_unlabelled, rng=rng) if self.density else None
        if self.diverse:
            p = state.predictive
            return conditioned_batch(
                p.grad_sq, p.mean, p.var, p.f, budget, rng, kind=self.score, weights=weights
            )
        scores = self.scores(state, rng)
        return select_top(scores if weights is None else scores * weights, budget, rng)


def strategy_names() -> tuple[str, ...]:
    """Every known strategy name."""

    ours = tuple(b + s for b in _BASES for s in _SUFFIXES)
    return ("random",) + ours + SKACTIVEML_NAMES


def make_strategy(name: str) -> RegressionStrategy:
    """The strategy called ``name``; unknown names raise ``ValueError`` listing the known ones."""
    if name == "random":
        return ScoreStrategy("random", "random")
    for base in _BASES:
        for suffix in _SUFFIXES:
            if name == base + suffix:
                return ScoreStrategy(name, base, "diverse" in suffix, "density" in suffix)

    if name in SKACTIVEML_NAMES:
        return SkactivemlStrategy(name)
    raise ValueError(f"unknown strategy '{name}'; known strategies: {', '.join(strategy_names())}")
