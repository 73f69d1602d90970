"""Pose active-learning strategies: pure scoring functions behind one contract.

``make_strategy(name, **hyperparameters)`` builds one by name: ``random``, ``coreset``,
``multipeak``, ``learning-loss``, ``egl++``.
"""

from __future__ import annotations

import dataclasses

from eglpp.strategies.base import NEEDS, PoolInputs, Strategy
from eglpp.strategies.coreset import CoreSet, k_center_greedy
from eglpp.strategies.egl_pp import EGLPlusPlus, egl_pp_scores
from eglpp.strategies.learning_loss import LearningLoss, LossPredictionHead
from eglpp.strategies.multipeak import MultiPeakEntropy, multi_peak_entropy
from eglpp.strategies.random_sampling import RandomSampling

__all__ = [
    "NEEDS",
    "PoolInputs",
    "Strategy",
    "STRATEGIES",
    "make_strategy",
    "RandomSampling",
    "CoreSet",
    "k_center_greedy",
    "MultiPeakEntropy",
    "multi_peak_entropy",
    "LearningLoss",
    "LossPredictionHead",
    "EGLPlusPlus",
    "egl_pp_scores",
]

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (RandomSampling, CoreSet, MultiPeakEntropy, LearningLoss, EGLPlusPlus)
}


def make_strategy(name: str, **hyperparameters) -> Strategy:
    """Build a strategy by name, e.g. ``make_strategy("egl++", k=10)``.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the known ones) or an unknown hyperparameter
        (the message lists the strategy's hyperparameters).
    """
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; known strategies: {', '.join(STRATEGIES)}")
    cls = STRATEGIES[name]
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(hyperparameters) - set(known))
    if unknown:
        raise ValueError(
            f"strategy {name!r} has no hyperparameter {', '.join(map(repr, unknown))}; "
            f"it accepts: {', '.join(known) or '(none)'}"
        )
    return cls(**hyperparameters)
