"""What every ensemble family shares: its config, its Gaussian predictive, its bootstrap.

:mod:`eglpp.regression.ensembles` (linear, GP) and :mod:`eglpp.regression.mlp` (network) both
build on these; ``fit_ensemble`` picks the family.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

__all__ = ["FAMILIES", "EnsembleConfig", "Predictive", "FittedEnsemble", "bootstrap_indices"]

FAMILIES = ("linear", "gp", "mlp")


@dataclass(frozen=True)
class EnsembleConfig:
    """How to build the ensemble (K members plus the main model)."""

    family: str = "linear"  # linear | gp | mlp
    n_members: int = 10  # K bootstrap members
    ridge: float = 1e-3  # linear: L2 penalty on the weights (not the intercept)
    gp_noise_in_variance: bool = True  # gp: σ_k² includes the learnt white-noise level
    mlp_hidden: int = 32  # mlp: width of the two hidden layers
    mlp_epochs: int = 400  # mlp: full-batch Adam steps
    mlp_lr: float = 1e-2
    mlp_weight_decay: float = 1e-4

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"unknown family '{self.family}'; expected one of {FAMILIES}")
        if self.n_members < 2:
            raise ValueError(f"n_members must be at least 2, got {self.n_members}")


@dataclass(frozen=True)
class Predictive:
    """An ensemble's Gaussian predictive on N rows.

    Attributes
    ----------
    mean, var : (K, N) member means μ_k(x) and variances σ_k²(x)
    f : (N,) prediction of the main model (trained on all labelled data)
    grad_sq : (N,) ‖∇_θ f(x)‖² of the main model (1 for a GP)
    """

    mean: np.ndarray
    var: np.ndarray
    f: np.ndarray
    grad_sq: np.ndarray

    @property
    def total_variance(self) -> np.ndarray:
        """(N,) mean_k[σ_k² + (μ_k - f)²]: the Gaussian around ``f`` used for the NLL."""
        return (self.var + (self.mean - self.f) ** 2).mean(axis=0)


class FittedEnsemble(Protocol):
    """What every family returns: the full predictive, and the cheap means alone."""

    def predict(self, x: np.ndarray) -> Predictive: ...

    def member_means(self, x: np.ndarray) -> np.ndarray: ...  # (K, N)

    def main_mean(self, x: np.ndarray) -> np.ndarray: ...  # (N,)


def bootstrap_indices(n: int, n_members: int, rng: np.random.Generator) -> np.ndarray:
    """(K, n) indices drawn with replacement, one bootstrap resample per member."""
    return rng.integers(0, n, size=(n_members, n))
