"""Pose active-learning strategies: pure scoring functions behind one contract.

``make_strategy(name, **hyperparameters)`` builds one by name: ``random``, ``coreset``,
``multipeak``, ``learning-loss``, ``egl++``. Each strategy's frozen dataclass *is* its settings;
:class:`StrategySettings` holds one of each, and is what the experiment config, its YAML file,
``--set strategy.NAME.KEY=…`` and ``eglpp select --param KEY=…`` carry.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from eglpp.strategies.base import NEEDS, PoolInputs, Strategy
from eglpp.strategies.coreset import CoreSet, k_center_greedy
from eglpp.strategies.egl_pp import EGLPlusPlus, egl_pp
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
    "egl_pp",
    "StrategySettings",
    "settings_field",
]

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (RandomSampling, CoreSet, MultiPeakEntropy, LearningLoss, EGLPlusPlus)
}


def make_strategy(name: str, **hyperparameters: Any) -> Strategy:
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


def settings_field(name: str) -> str:
    """The :class:`StrategySettings` field of a strategy name: ``egl++`` -> ``egl_pp``.

    >>> settings_field("learning-loss")
    'learning_loss'
    """
    return name.replace("++", "_pp").replace("-", "_")


@dataclass(frozen=True)
class StrategySettings:
    """One settings object per strategy; :meth:`get` is the strategy of a name."""

    random: RandomSampling = field(default_factory=RandomSampling)
    coreset: CoreSet = field(default_factory=CoreSet)
    multipeak: MultiPeakEntropy = field(default_factory=MultiPeakEntropy)
    learning_loss: LearningLoss = field(default_factory=LearningLoss)
    egl_pp: EGLPlusPlus = field(default_factory=EGLPlusPlus)

    def get(self, name: str) -> Strategy:
        """The configured strategy ``name``; an unknown name raises listing the known ones."""
        if name not in STRATEGIES:
            raise ValueError(
                f"unknown strategy {name!r}; known strategies: {', '.join(STRATEGIES)}"
            )
        return getattr(self, settings_field(name))
