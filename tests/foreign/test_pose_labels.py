"""Foreign pose models on pose data sets (what ``eglpp select --model`` scores): the labelled
joints become labels for the model's prediction, Gaussian heatmaps at its resolution or the
coordinates themselves, with the joints' visibility as the loss's mask.

Oracle: an autograd loop per (example, neighbour) with the masked losses written out here.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from foreign_networks import coordinate_net, simple_baseline

import eglpp
from eglpp.pose.datasets.synthetic import RenderConfig, SyntheticPoseDataset
from eglpp.pose.heatmaps import target_heatmaps


def _loop(model, read, pool, labels, visible, neighbours, loss) -> np.ndarray:
    params = list(model.parameters())
    model.eval()
    out = np.zeros(neighbours.shape)
    for i in range(len(pool)):
        x = pool[i]["image"][None]
        for k, j in enumerate(neighbours[i]):
            value = loss(read(model(x)), labels[j : j + 1], visible[j : j + 1].float())
            out[i, k] = sum(
                float(g.double().pow(2).sum()) for g in torch.autograd.grad(value, params)
            )
    return out


def _heatmap_mse(pred, target, w):  # mean over joints of w_j · mean over pixels of (P − T)²
    return (((pred - target) ** 2).mean(dim=(-2, -1)) * w).mean()


def _coordinate_mse(pred, target, w):  # mean over joints of w_j · mean over x, y of (p − t)²
    return (((pred - target) ** 2).mean(-1) * w).mean()


@pytest.mark.parametrize("name", ["simple_baseline", "coordinates"])
def test_pose_labels_for_a_foreign_model_equal_the_masked_loss_loop(name):
    size = 64 if name == "simple_baseline" else 32
    pool = SyntheticPoseDataset(4, RenderConfig(size=size), seed=7)
    lab = SyntheticPoseDataset(6, RenderConfig(size=size), seed=8)
    lab.visible[0, :3] = False  # missing joints: masked out of the loss
    joints, visible = torch.as_tensor(lab.joints).float(), torch.as_tensor(lab.visible)
    if name == "simple_baseline":
        model, opts, read, loss = (
            simple_baseline(),
            {"embedding": "layer4"},
            lambda o: o,
            _heatmap_mse,
        )
        labels = target_heatmaps(joints, visible, size, 1.5, 4)  # σ 1.5 heatmap px, stride 4
    else:
        model, read, loss = coordinate_net(), lambda o: o["coords"], _coordinate_mse
        opts, labels = {"prediction": "coords", "embedding": "features"}, joints
    out = eglpp.score("egl++", model, pool, lab, **opts, k=3, perplexity=2.0, sigma=1.5)
    naive = _loop(model, read, pool, labels, visible, out.details["neighbours"], loss)
    np.testing.assert_allclose(out.details["gradnorms"], naive, rtol=1e-4)
