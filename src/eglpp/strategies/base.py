"""The strategy contract: what the loop computed (``PoolInputs``) in, scores out.

A strategy is a frozen dataclass of hyperparameters around a pure scoring function. It declares
the pool outputs it ``needs``; the loop computes exactly those and never branches on which
strategy it runs. One shared selector (``eglpp.selection.select_top``) turns scores into
``query_indices``; Core-set, which selects greedily, overrides ``select``.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from eglpp.selection import check_budget, select_top

__all__ = ["NEEDS", "PoolInputs", "Strategy"]

#: Every pool output a strategy may ask for, and the ``PoolInputs`` fields that carry it.
NEEDS: dict[str, tuple[str, ...]] = {
    "embeddings": ("embeddings_unlabelled", "embeddings_labelled"),
    "heatmaps": ("heatmaps_unlabelled",),
    "predicted_loss": ("predicted_loss",),
    "pair_gradnorms": ("pair_gradnorms",),
    "expected_gradnorms": ("expected_gradnorms",),
}


@dataclass(frozen=True)
class PoolInputs:
    """What the loop computed for this cycle; every array is in unlabelled order.

    Attributes
    ----------
    n_unlabelled : int
        U, the number of candidates.
    embeddings_unlabelled : (U, C) array or None
    embeddings_labelled : (L, C) array or None
    heatmaps_unlabelled : (U, J, h, w) array or None
        The last stack's heatmaps.
    predicted_loss : (U,) array or None
        The Learning Loss head's predictions.
    pair_gradnorms : callable or None
        ``pair_gradnorms(neighbours (U, K) int positions in the labelled set, label_source)
        -> (U, K)`` squared gradient norms ``‖∇θ ℓ(y_j, f(x_i))‖²``; ``label_source`` is
        ``"ground_truth"`` or ``"prediction"``. An optional third argument ``rows`` (n,)
        restricts it to those candidates (``neighbours`` then has n rows; EGL++'s
        ``approx_check``).
    expected_gradnorms : callable or None
        ``expected_gradnorms(neighbours (U, K), p (U, K), label_source) -> (U,)`` estimates of
        ``Σ_j p_j ‖∇θ ℓ(y_j, f(x_i))‖²`` with fewer than K products per image
        (``eglpp.gradnorm.approx.expected_pair_gradnorms``); only EGL++ with
        ``estimator="approx"`` asks for it.
    device : str
        The torch device the strategy's own computations run on (affinities, distances): the
        one the pool outputs were computed on.
    """

    n_unlabelled: int
    embeddings_unlabelled: np.ndarray | None = None
    embeddings_labelled: np.ndarray | None = None
    heatmaps_unlabelled: np.ndarray | None = None
    predicted_loss: np.ndarray | None = None
    pair_gradnorms: Callable[[np.ndarray, str], np.ndarray] | None = None
    expected_gradnorms: Callable[[np.ndarray, np.ndarray, str], np.ndarray] | None = None
    device: str = "cpu"

    def __post_init__(self) -> None:
        U = self.n_unlabelled
        if isinstance(U, bool) or not isinstance(U, (int, np.integer)) or U < 0:
            raise ValueError(f"PoolInputs.n_unlabelled must be a non-negative integer, got {U!r}")
        self._check_rows("embeddings_unlabelled", 2, U)
        self._check_rows("embeddings_labelled", 2, None)
        self._check_rows("heatmaps_unlabelled", 4, U)
        self._check_rows("predicted_loss", 1, U)
        zu, zl = self.embeddings_unlabelled, self.embeddings_labelled
        if zu is not None and zl is not None and zu.shape[1] != zl.shape[1]:
            raise ValueError(
                f"PoolInputs.embeddings_unlabelled has {zu.shape[1]} channels but "
                f"embeddings_labelled has {zl.shape[1]}"
            )
        if self.pair_gradnorms is not None and not callable(self.pair_gradnorms):
            raise TypeError("PoolInputs.pair_gradnorms must be callable (neighbours, label_source)")
        if self.expected_gradnorms is not None and not callable(self.expected_gradnorms):
            raise TypeError(
                "PoolInputs.expected_gradnorms must be callable (neighbours, p, label_source)"
            )

    def _check_rows(self, field: str, ndim: int, rows: int | None) -> None:
        value = getattr(self, field)
        if value is None:
            return
        if not isinstance(value, np.ndarray):
            raise TypeError(f"PoolInputs.{field} must be a numpy array, got {type(value).__name__}")
        if value.ndim != ndim:
            raise ValueError(f"PoolInputs.{field} must be {ndim}-D, got shape {value.shape}")
        if rows is not None and value.shape[0] != rows:
            raise ValueError(
                f"PoolInputs.{field} has {value.shape[0]} rows, expected n_unlabelled = {rows}"
            )
        if np.issubdtype(value.dtype, np.floating) and not np.isfinite(value).all():
            raise ValueError(f"PoolInputs.{field} contains NaN or infinite values")


class Strategy(ABC):
    """Base of every pose strategy: hyperparameters, needs, score, select.

    Subclasses are frozen dataclasses whose fields are the hyperparameters, set ``name`` and
    ``needs`` and implement ``score``.
    """

    name: ClassVar[str]
    needs: ClassVar[frozenset[str]]
    #: Epochs the experiment fits :meth:`auxiliary` on the frozen base model before cycle 1.
    head_epochs: ClassVar[int] = 0
    #: Whether a score says how much an item is wanted (pictures of the highest and lowest
    #: scores explain the selection); False where scores are mere draws (random sampling).
    informative_scores: ClassVar[bool] = True

    @abstractmethod
    def score(self, inputs: PoolInputs, rng: np.random.Generator) -> np.ndarray:
        """One score per unlabelled item, (U,) float64; higher means more wanted."""

    def explain(
        self, inputs: PoolInputs, rng: np.random.Generator
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Scores plus the details behind them (e.g. neighbours and p for EGL++)."""
        return self.score(inputs, rng), {}

    def select(self, inputs: PoolInputs, budget: int, rng: np.random.Generator) -> np.ndarray:
        """``query_indices`` (budget,): positions in unlabelled order, best first."""
        self.check_inputs(inputs)
        self._check_rng(rng)
        check_budget(budget, inputs.n_unlabelled)
        return select_top(self.score(inputs, rng), budget, rng)

    def select_explained(
        self, inputs: PoolInputs, budget: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """``(query_indices, scores, details)`` from one scoring pass (what the loop saves); the
        same query as :meth:`select` for the same generator state."""
        self.check_inputs(inputs)
        self._check_rng(rng)
        check_budget(budget, inputs.n_unlabelled)
        scores, details = self.explain(inputs, rng)
        return select_top(scores, budget, rng), scores, details

    def auxiliary(self, feature_channels: tuple[int, ...]) -> Any:
        """An auxiliary module to train with the pose network (Learning Loss), else None."""
        return None

    def hyperparameters(self) -> dict[str, Any]:
        """The hyperparameters as a plain dict, for the run's saved config."""
        return dataclasses.asdict(self) if dataclasses.is_dataclass(self) else {}

    def check_inputs(self, inputs: PoolInputs) -> None:
        """Raise naming the ``PoolInputs`` fields this strategy needs but did not get."""
        if not isinstance(inputs, PoolInputs):
            raise TypeError(f"inputs must be PoolInputs, got {type(inputs).__name__}")
        missing = [
            f for need in sorted(self.needs) for f in NEEDS[need] if getattr(inputs, f) is None
        ]
        if missing:
            raise ValueError(
                f"strategy {self.name!r} needs {', '.join(missing)} in PoolInputs, got None"
            )

    @staticmethod
    def _check_rng(rng: np.random.Generator) -> None:
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
