import numpy as np
import pytest
import torch
from scipy.special import rel_entr, softmax
from template_strategy import StrategyTemplate

from eglpp.strategies import LossPredictionHead, PoolInputs, make_strategy
from eglpp.strategies.learning_loss import kl_ranking_loss, margin_ranking_loss


def _features(seed, B=6, channels=(8, 8, 8)):
    g = torch.Generator().manual_seed(seed)
    return tuple(
        torch.randn(B, c, 16 // 2**i, 16 // 2**i, generator=g) for i, c in enumerate(channels)
    )


class TestLearningLoss(StrategyTemplate):
    name = "learning-loss"

    def test_score_is_the_predicted_loss(self):
        inputs = PoolInputs(3, predicted_loss=np.array([0.2, 0.9, 0.1]))
        s = make_strategy("learning-loss")
        np.testing.assert_array_equal(s.score(inputs, np.random.default_rng(0)), [0.2, 0.9, 0.1])
        assert s.select(inputs, 2, np.random.default_rng(0)).tolist() == [1, 0]

    def test_head_shapes_and_interface(self):
        head = make_strategy("learning-loss", hidden=16).auxiliary((8, 8, 8))
        assert isinstance(head, LossPredictionHead)
        feats = _features(0)
        assert head.predict(feats).shape == (6,)
        loss = head(feats, torch.rand(6, generator=torch.Generator().manual_seed(1)))
        assert loss.ndim == 0 and torch.isfinite(loss)
        with pytest.raises(ValueError, match="feature tensors"):
            head.predict(feats[:2])

    def test_margin_ranking_loss_equals_torch_on_half_pairs(self):
        g = torch.Generator().manual_seed(2)
        pred, target = torch.randn(7, generator=g), torch.rand(7, generator=g)
        # pairs (0,6), (1,5), (2,4); the middle item 3 is unpaired
        x1, x2 = pred[:3], pred.flip(0)[:3]
        y = torch.sign(target[:3] - target.flip(0)[:3])
        expected = torch.nn.functional.margin_ranking_loss(x1, x2, y, margin=1.0)
        torch.testing.assert_close(margin_ranking_loss(pred, target, 1.0), expected)

    def test_margin_loss_zero_when_ranked_with_margin(self):
        target = torch.tensor([3.0, 2.0, 1.0, 0.0])
        assert margin_ranking_loss(torch.tensor([9.0, 5.0, 1.0, -3.0]), target).item() == 0.0
        single = torch.tensor([1.0], requires_grad=True)
        out = margin_ranking_loss(single, torch.tensor([0.5]))
        out.backward()
        assert out.item() == 0.0 and single.grad is not None

    def test_kl_objective_equals_scipy(self):
        pred, target = torch.tensor([0.1, 2.0, -1.0, 0.5]), torch.tensor([1e-3, 3e-3, 2e-3, 4e-3])
        t = target.numpy().astype(np.float64)
        q_true = softmax((t - t.mean()) / t.std(ddof=1))
        expected = rel_entr(q_true, softmax(pred.numpy().astype(np.float64))).sum()
        assert kl_ranking_loss(pred, target).item() == pytest.approx(expected, rel=1e-5)

    @pytest.mark.parametrize("detach", [True, False])
    def test_detach_controls_gradients_into_features(self, detach):
        head = make_strategy("learning-loss", detach_features=detach, hidden=4).auxiliary((8, 8))
        feats = tuple(f.requires_grad_() for f in _features(3, channels=(8, 8)))
        head(feats, torch.rand(6, generator=torch.Generator().manual_seed(4))).backward()
        assert (feats[0].grad is None) == detach
        assert head.out.weight.grad is not None

    def test_training_learns_the_ranking(self):
        # a head trained on features whose mean encodes the loss learns to rank the losses
        g = torch.Generator().manual_seed(5)
        head = LossPredictionHead((4,), hidden=16)
        with torch.no_grad():  # deterministic initialisation without global seeding
            for param in head.parameters():
                param.copy_(0.3 * torch.randn(param.shape, generator=g))
        opt = torch.optim.Adam(head.parameters(), lr=1e-2)
        for _ in range(150):
            x = torch.randn(16, 4, 4, 4, generator=g)
            loss_true = x.mean(dim=(1, 2, 3)) * 3.0 + 1.0
            opt.zero_grad()
            head((x,), loss_true).backward()
            opt.step()
        x = torch.randn(64, 4, 4, 4, generator=g)
        pred = head.predict((x,)).detach().numpy()
        from scipy.stats import spearmanr

        assert spearmanr(pred, x.mean(dim=(1, 2, 3)).numpy()).statistic > 0.9

    def test_bad_objective(self):
        with pytest.raises(ValueError, match="objective"):
            make_strategy("learning-loss", objective="hinge")
