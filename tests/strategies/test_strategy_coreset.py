import numpy as np
import pytest
from template_strategy import StrategyTemplate

from eglpp.strategies import PoolInputs, k_center_greedy, make_strategy


class TestCoreSet(StrategyTemplate):
    name = "coreset"

    def test_known_answer_on_a_line(self):
        # labelled at 0; unlabelled at 1, 2, 4, 10, 11: farthest is 11, then 4 (4 from 0,
        # 6 from 11), then 2 (2 from both 0 and 4, beating 1 (from 0) and 10 (from 11))
        zl = np.array([[0.0, 0.0]])
        zu = np.array([[1.0, 0.0], [2.0, 0.0], [4.0, 0.0], [10.0, 0.0], [11.0, 0.0]])
        q = k_center_greedy(zu, zl, 3, np.random.default_rng(0))
        assert q.tolist() == [4, 2, 1]

    def test_known_answer_clusters(self):
        # three clusters far apart, one already labelled: two picks cover the two others
        rng = np.random.default_rng(0)
        centres = np.array([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0]])
        zu = np.concatenate([c + rng.normal(scale=0.1, size=(5, 2)) for c in centres])
        q = k_center_greedy(zu, centres[:1], 2, rng)
        assert sorted(q // 5) == [1, 2]

    def test_equals_scikit_activeml(self):
        from skactiveml.pool._core_set import k_greedy_center

        rng = np.random.default_rng(4)
        zl, zu = rng.normal(size=(6, 3)), rng.normal(size=(40, 3))
        X = np.concatenate([zl, zu])
        y = np.concatenate([np.zeros(6), np.full(40, np.nan)])
        expected, _ = k_greedy_center(X, y, batch_size=8, random_state=0)
        q = k_center_greedy(zu, zl, 8, rng)
        np.testing.assert_array_equal(q, np.asarray(expected) - 6)

    def test_duplicates_never_picked_twice(self):
        zu = np.zeros((4, 2))
        q = k_center_greedy(zu, np.ones((1, 2)), 4, np.random.default_rng(0))
        assert sorted(q.tolist()) == [0, 1, 2, 3]

    def test_no_labelled_points_draws_the_first_centre(self):
        zu = np.random.default_rng(1).normal(size=(10, 2))
        q = k_center_greedy(zu, np.zeros((0, 2)), 3, np.random.default_rng(2))
        assert len(set(q.tolist())) == 3

    def test_score_is_distance_to_nearest_labelled(self):
        zl = np.array([[0.0, 0.0], [10.0, 0.0]])
        zu = np.array([[3.0, 4.0], [9.0, 0.0]])
        inputs = PoolInputs(2, embeddings_unlabelled=zu, embeddings_labelled=zl)
        scores = make_strategy("coreset").score(inputs, np.random.default_rng(0))
        np.testing.assert_allclose(scores, [5.0, 1.0])

    def test_mismatched_channels_raise(self):
        with pytest.raises(ValueError, match="channels"):
            PoolInputs(
                2, embeddings_unlabelled=np.zeros((2, 3)), embeddings_labelled=np.zeros((1, 2))
            )
