"""scikit-activeml's regression strategies behind the same ``select`` as ours.

Each adapter builds the arrays scikit-activeml expects (``X`` = labelled rows then unlabelled
rows, ``y`` with NaN for the unlabelled, ``candidates`` = the unlabelled positions) and
returns ``query_indices`` in unlabelled order. Where a strategy takes fitted models we hand it
ours (:class:`FixedRegressor`: the main model ``f`` for greedy sampling in y / iGS, the K
members for query-by-committee), so it judges the same ensemble as ``egl``. Strategies that
refit a probabilistic regressor per candidate (expected model variance reduction,
KL-divergence maximisation) get a cheap surrogate: scikit-learn's ``BayesianRidge`` (linear
and mlp families) or the main GP's fitted kernel, frozen (gp family), evaluated on at most
``max_candidates`` random candidates (drawn with the run's generator) and ``max_eval``
evaluation rows.
scikit-activeml's own EMC (``skal-emc``) fits its own ridge bootstraps with an intercept
column in its feature map.

References
----------
Kottke, D. et al. "scikit-activeml: A library and toolbox for active learning algorithms."
Preprints 2021. Wu, D., Lin, C.-T., Huang, J. "Active learning for regression using greedy
sampling." Information Sciences 2019.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

import numpy as np
from skactiveml.base import SkactivemlRegressor
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.linear_model import BayesianRidge, Ridge

from eglpp.regression.skactiveml import intercept_map

if TYPE_CHECKING:
    from eglpp.regression.pool_state import PoolState

__all__ = ["FixedRegressor", "SkactivemlStrategy", "SKACTIVEML_NAMES", "intercept_map"]

SKACTIVEML_NAMES = ("gsx", "gsy", "igs", "qbc", "emvr", "kldiv", "skal-emc")


class FixedRegressor(SkactivemlRegressor):
    """A fitted scikit-activeml regressor whose ``predict`` is ``predict_fn`` (never refit)."""

    def __init__(
        self,
        predict_fn: Callable[[np.ndarray], np.ndarray] | None = None,
        missing_label=np.nan,
        random_state=None,
    ):
        super().__init__(missing_label=missing_label, random_state=random_state)
        self.predict_fn = predict_fn
        self.fitted_ = True

    def fit(
        self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> NoReturn:
        raise NotImplementedError("FixedRegressor is already fitted; pass fit_reg=False")

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.predict_fn(np.asarray(X, dtype=np.float64)))


def _probabilistic_surrogate(ensemble):
    from skactiveml.regressor import SklearnNormalRegressor  # lazy: heavy, only this path

    main = getattr(ensemble, "main", None)
    if isinstance(main, GaussianProcessRegressor):
        est = GaussianProcessRegressor(main.kernel_, normalize_y=True, optimizer=None)
    else:
        est = BayesianRidge()
    return SklearnNormalRegressor(est)


@dataclass(frozen=True)
class SkactivemlStrategy:
    """One of scikit-activeml's regression strategies, by our name (``SKACTIVEML_NAMES``)."""

    name: str
    max_candidates: int = 256
    max_eval: int = 256

    def __post_init__(self) -> None:
        if self.name not in SKACTIVEML_NAMES:
            raise ValueError(f"unknown scikit-activeml strategy '{self.name}'")

    def select(self, state: PoolState, budget: int, rng: np.random.Generator) -> np.ndarray:
        """``query_indices`` (budget,) into ``state.x_unlabelled``."""
        from skactiveml import pool  # lazy: heavy, only when a scikit-activeml strategy runs
        from skactiveml.regressor import SklearnRegressor

        L, U = len(state.y_labelled), len(state.x_unlabelled)
        X = np.vstack([state.x_labelled, state.x_unlabelled])
        y = np.concatenate([state.y_labelled, np.full(U, np.nan)])
        cand = np.arange(L, L + U)
        seed = int(rng.integers(2**31 - 1))
        ens = state.ensemble
        kw = {"batch_size": budget, "candidates": cand}
        if self.name == "gsx":
            idx = pool.GreedySamplingX(random_state=seed).query(X, y, **kw)
        elif self.name in ("gsy", "igs"):
            qs = pool.GreedySamplingTarget(
                method="GSy" if self.name == "gsy" else "GSi", random_state=seed
            )
            reg = FixedRegressor(ens.main_mean)
            idx = qs.query(X, y, reg, fit_reg=False, **kw)
        elif self.name == "qbc":
            K = state.predictive.mean.shape[0]
            members = [FixedRegressor(lambda x, k=k: ens.member_means(x)[k]) for k in range(K)]
            idx = pool.QueryByCommittee(random_state=seed).query(
                X, y, members, fit_ensemble=False, **kw
            )
        elif self.name == "skal-emc":
            K = state.predictive.mean.shape[0]
            qs = pool.ExpectedModelChangeMaximization(
                bootstrap_size=K, n_train=1.0, feature_map=intercept_map, random_state=seed
            )
            idx = qs.query(X, y, SklearnRegressor(Ridge(alpha=1e-3)), **kw)
        else:
            sub = np.random.default_rng(seed)
            if U > self.max_candidates:
                kw["candidates"] = np.sort(sub.choice(cand, self.max_candidates, replace=False))
                kw["batch_size"] = min(budget, self.max_candidates)
            eval_rows = X[sub.choice(len(X), min(self.max_eval, len(X)), replace=False)]
            cls = {
                "emvr": pool.ExpectedModelVarianceReduction,
                "kldiv": pool.KLDivergenceMaximization,
            }[self.name]
            if self.name == "emvr":
                kw["X_eval"] = eval_rows
            qs = cls(random_state=seed)
            idx = qs.query(X, y, _probabilistic_surrogate(ens), **kw)
            if len(idx) < budget:  # fewer candidates than budget: fill at random
                rest = np.setdiff1d(cand, idx)
                idx = np.concatenate([idx, sub.choice(rest, budget - len(idx), replace=False)])
        return np.asarray(idx, dtype=np.int64) - L
