"""eglpp's hourglass through the model contract equals the hourglass's own outputs.

The experiment loop and ``eglpp select`` score the hourglass as ``hourglass_contract``: its
embedding captured by a forward hook on the last stack's feature layer, its Learning Loss
features on the last hourglass. These must be what ``HourglassOutput`` and
``eglpp.pose.inference.predict`` give.
"""

import numpy as np
import torch

import eglpp
from eglpp.pose.datasets.synthetic import RenderConfig, SyntheticPoseDataset
from eglpp.pose.hourglass import HourglassConfig, StackedHourglass
from eglpp.pose.inference import predict
from eglpp.scoring.contract import hourglass_contract
from eglpp.scoring.forward import forward_pool
from eglpp.strategies import LearningLoss, k_center_greedy


def _model() -> StackedHourglass:
    cfg = HourglassConfig(n_stacks=2, channels=8, depth=2)
    return StackedHourglass(cfg).reset_parameters(torch.Generator().manual_seed(0)).eval()


def test_hourglass_contract_equals_predict():
    model, data = _model(), SyntheticPoseDataset(6, RenderConfig(size=32), seed=3)
    head = LearningLoss(hidden=4).auxiliary(model.feature_channels())
    ours = forward_pool(hourglass_contract(model), data, want=frozenset({"embeddings", "heatmaps"}),
                        aux=head, batch_size=4)  # fmt: skip
    theirs = predict(model, data, return_embeddings=True, return_heatmaps=True, aux=head,
                     batch_size=4)  # fmt: skip
    for field in ("embeddings", "heatmaps", "joints", "maxvals", "aux", "indices"):
        np.testing.assert_array_equal(getattr(ours, field), getattr(theirs, field), err_msg=field)


def test_eglpp_score_on_the_hourglass_and_pose_datasets():
    model = _model()
    pool = SyntheticPoseDataset(5, RenderConfig(size=32), seed=4)
    lab = SyntheticPoseDataset(6, RenderConfig(size=32), seed=5)
    out = eglpp.score("egl++", model, pool, lab, k=3, perplexity=2.0)

    def embed(data):
        with torch.no_grad():
            return model(torch.stack([data[i]["image"] for i in range(len(data))])).embedding

    assert out.details["gradnorms"].shape == (5, 3) and np.isfinite(out.scores).all()
    sel = eglpp.select("coreset", model, pool, lab, budget=2)
    expected = k_center_greedy(embed(pool).numpy(), embed(lab).numpy(), 2, np.random.default_rng(0))
    np.testing.assert_array_equal(sel.query_indices, expected)
