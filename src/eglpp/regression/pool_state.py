"""What a regression strategy is given each cycle (:class:`PoolState`) and what it is
(:class:`RegressionStrategy`): shared by the registry (:mod:`eglpp.regression.registry`) and
the scikit-activeml adapter (:mod:`eglpp.regression.skactiveml_adapter`), which the registry
builds, so that neither imports the other for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from eglpp.regression.ensembles import FittedEnsemble, Predictive

__all__ = ["PoolState", "RegressionStrategy"]


@dataclass(frozen=True)
class PoolState:
    """What the loop computed for one cycle (rows of the unlabelled pool in pool order)."""

    x_labelled: np.ndarray  # (L, D)
    y_labelled: np.ndarray  # (L,)
    x_unlabelled: np.ndarray  # (U, D)
    predictive: Predictive  # on x_unlabelled
    ensemble: FittedEnsemble


class RegressionStrategy(Protocol):
    name: str

    def select(self, state: PoolState, budget: int, rng: np.random.Generator) -> np.ndarray: ...
