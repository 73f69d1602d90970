"""One test template that every pose strategy's tests inherit (cf. scikit-activeml's
``tests/template_query_strategy.py``): argument validation, reproducibility under a seed,
``budget`` unique indices in range, needs honoured, hyperparameters round-trip."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from eglpp.strategies import NEEDS, PoolInputs, Strategy, make_strategy


def full_pool_inputs(seed: int, n_unlabelled: int = 23, n_labelled: int = 9) -> PoolInputs:
    """PoolInputs with every field filled, all derived from ``seed``."""
    rng = np.random.default_rng(seed)
    U, L, C, J, h, w = n_unlabelled, n_labelled, 4, 3, 8, 8
    zu, zl = rng.normal(size=(U, C)), rng.normal(size=(L, C))
    gradnorm_table = rng.gamma(2.0, size=(U, L))

    def pair_gradnorms(neighbours: np.ndarray, label_source: str, rows=None) -> np.ndarray:
        assert label_source in ("ground_truth", "prediction")
        offset = 0.0 if label_source == "ground_truth" else 0.5
        table = gradnorm_table if rows is None else gradnorm_table[rows]  # only those pool rows
        return np.take_along_axis(table, neighbours, axis=1) + offset

    def expected_gradnorms(neighbours: np.ndarray, p: np.ndarray, label_source: str) -> np.ndarray:
        return (p * pair_gradnorms(neighbours, label_source)).sum(axis=1)

    return PoolInputs(
        n_unlabelled=U,
        embeddings_unlabelled=zu,
        embeddings_labelled=zl,
        heatmaps_unlabelled=rng.random(size=(U, J, h, w)).astype(np.float32),
        predicted_loss=rng.random(U),
        pair_gradnorms=pair_gradnorms,
        expected_gradnorms=expected_gradnorms,
    )


class StrategyTemplate:
    """Subclasses set ``name`` and may set ``hyperparameters`` and override ``inputs``."""

    name: str
    hyperparameters: dict = {}

    def make(self, **overrides) -> Strategy:
        return make_strategy(self.name, **{**self.hyperparameters, **overrides})

    def inputs(self, seed: int = 0, n_unlabelled: int = 23) -> PoolInputs:
        return full_pool_inputs(seed, n_unlabelled)

    # construction -------------------------------------------------------------------------
    def test_registry_builds_it(self):
        s = self.make()
        assert isinstance(s, Strategy) and s.name == self.name
        assert s.needs <= set(NEEDS)

    def test_unknown_hyperparameter_is_rejected(self):
        with pytest.raises(ValueError, match="no hyperparameter 'bogus'"):
            self.make(bogus=1)

    def test_hyperparameters_round_trip_and_are_frozen(self):
        s = self.make()
        assert make_strategy(self.name, **s.hyperparameters()) == s
        fields = dataclasses.fields(s)
        if fields:
            with pytest.raises(dataclasses.FrozenInstanceError):
                setattr(s, fields[0].name, None)

    # scores and selection ---------------------------------------------------------------
    def test_score_shape_and_values(self):
        inputs = self.inputs()
        scores = self.make().score(inputs, np.random.default_rng(0))
        assert scores.shape == (inputs.n_unlabelled,)
        assert np.issubdtype(scores.dtype, np.floating) and np.isfinite(scores).all()

    def test_explain_agrees_with_score(self):
        inputs = self.inputs()
        s = self.make()
        scores, details = s.explain(inputs, np.random.default_rng(3))
        np.testing.assert_allclose(scores, s.score(inputs, np.random.default_rng(3)))
        assert isinstance(details, dict)

    @pytest.mark.parametrize("budget", [1, 5, 23])
    def test_select_returns_budget_unique_indices_in_range(self, budget):
        inputs = self.inputs()
        q = self.make().select(inputs, budget, np.random.default_rng(1))
        assert q.shape == (budget,) and q.dtype == np.int64
        assert len(np.unique(q)) == budget
        assert q.min() >= 0 and q.max() < inputs.n_unlabelled

    def test_same_seed_same_selection(self):
        a = self.make().select(self.inputs(seed=5), 7, np.random.default_rng(11))
        b = self.make().select(self.inputs(seed=5), 7, np.random.default_rng(11))
        np.testing.assert_array_equal(a, b)

    def test_select_explained_agrees_with_select(self):
        inputs = self.inputs(seed=2)
        s = self.make()
        q, scores, details = s.select_explained(inputs, 6, np.random.default_rng(9))
        np.testing.assert_array_equal(q, s.select(inputs, 6, np.random.default_rng(9)))
        assert scores.shape == (inputs.n_unlabelled,) and isinstance(details, dict)

    def test_inputs_are_not_modified(self):
        inputs = self.inputs()
        before = {
            f: getattr(inputs, f).copy()
            for f in ("embeddings_unlabelled", "embeddings_labelled", "heatmaps_unlabelled")
        }
        self.make().select(inputs, 4, np.random.default_rng(0))
        for f, value in before.items():
            np.testing.assert_array_equal(getattr(inputs, f), value)

    # validation -------------------------------------------------------------------------
    @pytest.mark.parametrize("budget", [0, -1, 24])
    def test_bad_budget_raises(self, budget):
        with pytest.raises(ValueError, match="budget"):
            self.make().select(self.inputs(), budget, np.random.default_rng(0))

    def test_non_integer_budget_raises(self):
        with pytest.raises(TypeError, match="budget"):
            self.make().select(self.inputs(), 2.5, np.random.default_rng(0))

    def test_rng_must_be_a_generator(self):
        with pytest.raises(TypeError, match="rng"):
            self.make().select(self.inputs(), 2, 0)

    def test_inputs_must_be_pool_inputs(self):
        with pytest.raises(TypeError, match="PoolInputs"):
            self.make().select({"n_unlabelled": 3}, 1, np.random.default_rng(0))

    def test_missing_needs_are_named(self):
        s = self.make()
        for need in s.needs:
            for field in NEEDS[need]:
                inputs = dataclasses.replace(self.inputs(), **{field: None})
                with pytest.raises(ValueError, match=field):
                    s.select(inputs, 2, np.random.default_rng(0))

    def test_auxiliary_is_none_or_a_module(self):
        import torch

        aux = self.make().auxiliary((4, 4))
        assert aux is None or isinstance(aux, torch.nn.Module)
