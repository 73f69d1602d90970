"""Random sampling: the baseline every strategy is measured against."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from eglpp.strategies.base import PoolInputs, Strategy

__all__ = ["RandomSampling"]


@dataclass(frozen=True)
class RandomSampling(Strategy):
    """Uniform scores from the run's generator: a uniformly random ``budget``-subset.

    Examples
    --------
    >>> s = RandomSampling()
    >>> s.select(PoolInputs(n_unlabelled=5), 2, np.random.default_rng(0)).shape
    (2,)
    """

    name: ClassVar[str] = "random"
    needs: ClassVar[frozenset[str]] = frozenset()
    informative_scores: ClassVar[bool] = False

    def score(self, inputs: PoolInputs, rng: np.random.Generator) -> np.ndarray:
        self.check_inputs(inputs)
        self._check_rng(rng)
        return rng.random(inputs.n_unlabelled)
