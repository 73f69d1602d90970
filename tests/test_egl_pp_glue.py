"""The model-to-EGL++ glue: the labelled neighbours' target heatmaps and the gradient norms taken
with them, against values worked out here by plain autograd (issue 11's planted bugs: targets
with x and y swapped, or with another σ than training's)."""

from __future__ import annotations

import numpy as np
import torch

from eglpp.experiment.config import config_from_dict, preset
from eglpp.experiment.pool import scoring_settings
from eglpp.pose.datasets.synthetic import RenderConfig, SyntheticPoseDataset
from eglpp.pose.hourglass import HourglassConfig, StackedHourglass
from eglpp.scoring.pool_inputs import LabelledCache, pool_inputs
from eglpp.scoring.settings import ScoringConfig

SIZE, SIGMA = 32, 1.5  # input px; target σ in heatmap px (stride 4: 8×8 heatmaps)


def _oracle_targets(joints: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """(N, J, 8, 8): exp(-((col - u)² + (row - v)²) / 2σ²) at u, v = (x + 0.5) / 4 - 0.5."""
    u, v = ((joints + 0.5) / 4 - 0.5).transpose(2, 0, 1)  # (N, J) each: x → column, y → row
    grid = np.arange(SIZE // 4, dtype=np.float64)
    cols, rows = grid[None, None, None, :], grid[None, None, :, None]
    maps = np.exp(-((cols - u[..., None, None]) ** 2 + (rows - v[..., None, None]) ** 2)
                  / (2 * SIGMA**2))  # fmt: skip
    return np.where(visible[..., None, None], maps, 0.0)


def _world():
    render = RenderConfig(size=SIZE, domain="lsp")
    labelled = SyntheticPoseDataset(4, render, seed=1)
    pool = SyntheticPoseDataset(3, render, seed=2)
    model = StackedHourglass(HourglassConfig(n_stacks=2, channels=8, depth=2))
    model.reset_parameters(torch.Generator().manual_seed(0)).eval()
    return labelled, pool, model


def test_labelled_targets_are_the_training_gaussians_at_the_joints():
    labelled, _, model = _world()
    cache = LabelledCache(model, labelled, batch_size=4, device="cpu", sigma=SIGMA)
    targets, weights = cache.targets("ground_truth")
    joints = np.stack([labelled[i]["joints"].numpy() for i in range(4)]).astype(np.float64)
    visible = np.stack([labelled[i]["visible"].numpy() for i in range(4)])
    assert visible.any()
    np.testing.assert_allclose(targets.numpy(), _oracle_targets(joints, visible), atol=1e-5)
    np.testing.assert_array_equal(weights.numpy(), visible.astype(np.float32))


def test_pair_gradnorms_are_the_training_loss_gradients_with_each_neighbour():
    labelled, pool, model = _world()
    inputs = pool_inputs(frozenset({"pair_gradnorms"}), model, None, pool, labelled,
                         batch_size=2, sigma=SIGMA)  # fmt: skip
    neighbours = np.array([[0, 3], [2, 1], [1, 0]])
    got = inputs.pair_gradnorms(neighbours, "ground_truth")
    joints = np.stack([labelled[i]["joints"].numpy() for i in range(4)]).astype(np.float64)
    visible = np.stack([labelled[i]["visible"].numpy() for i in range(4)])
    targets = torch.as_tensor(_oracle_targets(joints, visible), dtype=torch.float32)
    weights = torch.as_tensor(visible, dtype=torch.float32)
    params = [p for p in model.parameters() if p.requires_grad]
    for i in range(3):
        for k, j in enumerate(neighbours[i]):
            pred = model(pool[i]["image"][None])  # (1, S, J, h, w), eval mode
            pred = pred if torch.is_tensor(pred) else pred[0]
            loss = (((pred - targets[j][None, None]) ** 2).mean(dim=(1, 3, 4)) * weights[j]).mean()
            grads = torch.autograd.grad(loss, params)
            expected = sum(float((g.double() ** 2).sum()) for g in grads)
            np.testing.assert_allclose(got[i, k], expected, rtol=1e-4)


def test_the_experiment_scores_with_its_training_sigma(micro_config):
    cfg = config_from_dict({**micro_config(), "cycle_train": {"sigma": 1.75}}, preset("tiny"))
    assert scoring_settings(cfg, np.zeros(5, np.int64))["sigma"] == 1.75 == cfg.cycle_train.sigma


def test_approx_on_a_real_model_is_exact_with_every_neighbour_and_a_lower_bound_without():
    """``expected_gradnorms`` of a real hourglass (not a mock whose estimate is the exact sum
    by construction): with n_exact ≥ K it is Σ_j p_j g_j of the exact pair norms; with fewer
    exact neighbours and no probes it leaves out the others' spread, so it is never above."""
    labelled, pool, model = _world()
    neighbours = np.array([[0, 3, 1], [2, 1, 0], [1, 0, 3]])
    p = np.array([[0.5, 0.3, 0.2], [0.6, 0.3, 0.1], [0.4, 0.4, 0.2]])
    exact = pool_inputs(frozenset({"pair_gradnorms"}), model, None, pool, labelled,
                        sigma=SIGMA).pair_gradnorms(neighbours, "ground_truth")  # fmt: skip
    expected = (p * exact).sum(1)

    def approx(n_exact: int) -> np.ndarray:
        scoring = ScoringConfig(n_exact=n_exact, n_probes=0)
        inputs = pool_inputs(frozenset({"expected_gradnorms"}), model, None, pool, labelled,
                             sigma=SIGMA, scoring=scoring)  # fmt: skip
        return inputs.expected_gradnorms(neighbours, p, "ground_truth")

    np.testing.assert_allclose(approx(3), expected, rtol=1e-4)
    lower = approx(1)
    assert np.all(lower <= expected * (1 + 1e-6)) and np.all(lower > 0)
    assert np.all(lower < expected * (1 - 1e-6)), "the spread left out is not zero here"
