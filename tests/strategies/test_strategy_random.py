import numpy as np
from scipy import stats
from template_strategy import StrategyTemplate

from eglpp.strategies import PoolInputs, make_strategy


class TestRandom(StrategyTemplate):
    name = "random"

    def test_needs_nothing(self):
        q = make_strategy("random").select(PoolInputs(n_unlabelled=10), 3, np.random.default_rng(0))
        assert len(set(q.tolist())) == 3

    def test_every_item_equally_likely(self):
        U, budget, n = 10, 3, 400
        counts = np.zeros(U)
        s = make_strategy("random")
        for seed in range(n):
            counts[s.select(PoolInputs(n_unlabelled=U), budget, np.random.default_rng(seed))] += 1
        # each item is picked with probability budget / U: chi-square goodness of fit
        assert stats.chisquare(counts).pvalue > 1e-3
        assert counts.sum() == n * budget
