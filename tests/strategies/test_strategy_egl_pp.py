import math

import numpy as np
import pytest
from template_strategy import StrategyTemplate

from eglpp.strategies import PoolInputs, egl_pp, make_strategy


class TestEGLPlusPlus(StrategyTemplate):
    name = "egl++"
    hyperparameters = {"k": 5, "perplexity": 3.0}

    def test_hand_worked_tiny_case(self):
        # one unlabelled point at 0; labelled at distances 1 and 2 (1-D); k = 2, perplexity chosen
        # so the hand-solved beta holds: p ∝ exp(-beta d^2) with d^2 = 1, 4.
        # Take beta = ln 3 / 3: p = (1, 1/3) / (4/3) = (3/4, 1/4); perplexity = 2^H(p) in bits.
        p = np.array([0.75, 0.25])
        perplexity = 2.0 ** (-(p * np.log2(p)).sum())
        g = np.array([[2.0, 10.0], [0.0, 0.0]])  # table: unlabelled row 0 → labelled columns

        def pair_gradnorms(neighbours, label_source):
            assert label_source == "ground_truth"
            return np.take_along_axis(g[: len(neighbours)], neighbours, axis=1)

        inputs = PoolInputs(
            1,
            embeddings_unlabelled=np.array([[0.0]]),
            embeddings_labelled=np.array([[2.0], [1.0]]),  # labelled index 1 is the nearest
            pair_gradnorms=pair_gradnorms,
        )
        s = make_strategy("egl++", k=2, perplexity=perplexity, tol=1e-12)
        scores, details = s.explain(inputs, np.random.default_rng(0))
        assert details["neighbours"].tolist() == [[1, 0]]
        np.testing.assert_allclose(details["p"], [[0.75, 0.25]], atol=1e-9)
        np.testing.assert_allclose(details["beta"], [math.log(3) / 3], rtol=1e-8)
        # score = 0.75 * g[0, 1] + 0.25 * g[0, 0] = 0.75 * 10 + 0.25 * 2 = 8
        np.testing.assert_allclose(scores, [8.0], atol=1e-8)

    def test_renormalise_changes_only_scale_per_row(self):
        inputs = self.inputs()
        a, da = make_strategy("egl++", k=3).explain(inputs, np.random.default_rng(0))
        b, db = make_strategy("egl++", k=3, renormalise=True).explain(
            inputs, np.random.default_rng(0)
        )
        np.testing.assert_allclose(db["p"].sum(1), 1.0)
        np.testing.assert_allclose(b, a / da["p"].sum(1))

    def test_label_source_is_passed_through(self):
        inputs = self.inputs()
        gt = make_strategy("egl++", k=4).score(inputs, np.random.default_rng(0))
        pr = make_strategy("egl++", k=4, label_source="prediction").score(
            inputs, np.random.default_rng(0)
        )
        _, d = make_strategy("egl++", k=4).explain(inputs, np.random.default_rng(0))
        np.testing.assert_allclose(pr - gt, 0.5 * d["p"].sum(1))  # the fixture adds 0.5

    def test_scores_equal_dense_eq12_over_top_k(self):
        from openTSNE import _tsne
        from scipy.spatial.distance import cdist

        inputs = self.inputs(seed=7)
        s = make_strategy("egl++", k=4, perplexity=3.0, tol=1e-10)
        scores, d = s.explain(inputs, np.random.default_rng(0))
        dist = cdist(inputs.embeddings_unlabelled, inputs.embeddings_labelled)
        P = np.asarray(_tsne.compute_gaussian_perplexity(dist, np.full(len(dist), 3.0)))
        nb = np.argsort(dist, axis=1)[:, :4]
        g = inputs.pair_gradnorms(nb, "ground_truth")
        np.testing.assert_allclose(scores, (np.take_along_axis(P, nb, 1) * g).sum(1), atol=1e-6)

    def test_default_settings_calibrate_the_perplexity(self):
        """EGL++ as configured by default (its own bisection tolerance) reaches the target
        perplexity on every row: 2^H of p over all labelled points equals it."""
        inputs = self.inputs(seed=3)
        n_labelled = len(inputs.embeddings_labelled)
        _, d = make_strategy("egl++", k=n_labelled, perplexity=3.0).explain(
            inputs, np.random.default_rng(0)
        )
        p = d["p"]
        np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-12)
        perplexity = 2 ** -(p * np.log2(np.clip(p, 1e-300, None))).sum(1)
        np.testing.assert_allclose(perplexity, 3.0, rtol=1e-4)

    def test_bad_hyperparameters_and_gradnorms(self):
        with pytest.raises(ValueError, match="label_source"):
            make_strategy("egl++", label_source="oracle")
        with pytest.raises(ValueError, match="perplexity"):
            make_strategy("egl++", perplexity=-1.0)
        with pytest.raises(ValueError, match="non-negative"):
            egl_pp(np.ones((1, 2)), np.array([[1.0, -1.0]]))
        bad = PoolInputs(
            2,
            embeddings_unlabelled=np.zeros((2, 2)),
            embeddings_labelled=np.ones((3, 2)),
            pair_gradnorms=lambda nb, src: np.ones((2, 1)),
        )
        with pytest.raises(ValueError, match="pair_gradnorms returned shape"):
            make_strategy("egl++", k=2).score(bad, np.random.default_rng(0))


class TestEGLPlusPlusApprox(StrategyTemplate):
    name = "egl++"
    hyperparameters = {"k": 5, "perplexity": 3.0, "estimator": "approx"}

    def test_needs_expected_gradnorms_and_matches_exact_when_the_estimate_is_exact(self):
        s = self.make()
        assert s.needs == {"embeddings", "expected_gradnorms"}
        inputs = self.inputs(seed=4)
        exact = make_strategy("egl++", k=5, perplexity=3.0)
        assert exact.needs == {"embeddings", "pair_gradnorms"}
        rng = np.random.default_rng(0)
        np.testing.assert_allclose(s.score(inputs, rng), exact.score(inputs, rng))

    def test_bad_estimate_shape(self):
        bad = PoolInputs(
            2,
            embeddings_unlabelled=np.zeros((2, 2)),
            embeddings_labelled=np.ones((3, 2)),
            expected_gradnorms=lambda nb, p, src: np.ones(3),
        )
        with pytest.raises(ValueError, match="expected_gradnorms returned shape"):
            self.make(k=2).score(bad, np.random.default_rng(0))


def test_unknown_strategy_lists_known_names():
    with pytest.raises(ValueError, match="known strategies: random, coreset, multipeak"):
        make_strategy("badge")


def test_approx_check_measures_the_ranking_on_a_sample():
    """The check runs outside the strategy (eglpp.scoring.approx_check), on its details."""
    from template_strategy import full_pool_inputs

    from eglpp.scoring.approx_check import approx_agreement, check_needs

    inputs = full_pool_inputs(5, n_unlabelled=40)
    strategy = make_strategy("egl++", k=5, perplexity=3.0, estimator="approx")
    assert strategy.needs == {"embeddings", "expected_gradnorms"}
    assert check_needs(strategy.needs, 20) == {"embeddings", "expected_gradnorms", "pair_gradnorms"}
    assert check_needs(make_strategy("egl++").needs, 20) == {"embeddings", "pair_gradnorms"}
    scores, details = strategy.explain(inputs, np.random.default_rng(0))
    rows = np.sort(np.random.default_rng(1).choice(40, size=20, replace=False))
    nb = details["neighbours"]

    def exact(r):
        return inputs.pair_gradnorms(nb[r], "ground_truth", r)

    check = approx_agreement(scores, details["p"], nb, exact, rows)
    # this mock's approx equals the exact sum: the exact scores of the sample are its scores
    np.testing.assert_allclose(check["exact"], scores[rows])
    assert check["spearman"] == pytest.approx(1.0)
    assert check["top_overlap"] == 1.0
    # an approximation that reverses the ranking is measured as such
    check = approx_agreement(-scores, details["p"], nb, exact, rows)
    assert check["spearman"] == pytest.approx(-1.0)
    assert check["top_overlap"] == 0.0
    with pytest.raises(ValueError, match="approx_check"):
        make_strategy("egl++", approx_check=5)  # a scoring setting now, not EGL++'s
