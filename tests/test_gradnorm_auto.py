"""``method="auto"``, the default: what it chooses, that it says so, and the settings that
carry it (ScoringConfig, ``max_memory``)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import eglpp
from eglpp.gradnorm.base import GradNormConfig
from eglpp.gradnorm.exact import per_example_gradnorms
from eglpp.scoring.api import as_dataset
from eglpp.scoring.labels import LabelledCache
from eglpp.scoring.pool_inputs import pool_inputs
from eglpp.scoring.settings import ScoringConfig


class Positioned(nn.Module):
    """A linear layer plus a parameter added in ``forward`` (outside any layer)."""

    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(4, 3)
        self.shift = nn.Parameter(torch.zeros(3))

    def forward(self, x):
        return self.layer(x) + self.shift


def _loss(pred, target, weight):
    return ((pred - target) ** 2).sum()


@pytest.mark.parametrize(
    ("model", "chosen"),
    [
        (nn.Sequential(nn.Linear(4, 5), nn.LayerNorm(5), nn.Linear(5, 3)), "hooks"),
        (Positioned(), "vmap"),
    ],
)
def test_auto_reports_its_choice_and_equals_vmap(model, chosen):
    g = torch.Generator().manual_seed(0)
    x, y, w = torch.randn(3, 4, generator=g), torch.randn(3, 2, 3, generator=g), torch.ones(3, 2, 1)
    said = []
    auto = GradNormConfig(prediction=lambda o: o, report=said.append)
    assert auto.method == "auto"  # the default
    got = per_example_gradnorms(model, x, y, w, config=auto, loss_fn=_loss)
    assert len(said) == 1 and said[0].startswith(chosen), said
    vm = GradNormConfig(method="vmap", prediction=lambda o: o, report=said.append)
    torch.testing.assert_close(
        got, per_example_gradnorms(model, x, y, w, config=vm, loss_fn=_loss), rtol=1e-4, atol=0
    )
    assert said[1] == "vmap (asked for)"


def test_scoring_config_carries_auto_and_max_memory():
    assert ScoringConfig().gradnorm_method == "auto"
    assert ScoringConfig(max_memory="8GiB").max_memory == "8GiB"
    with pytest.raises(ValueError, match="scoring.max_memory must be a positive number"):
        ScoringConfig(max_memory="-1GiB")
    with pytest.raises(ValueError, match="'auto', 'vmap' or 'hooks'"):
        ScoringConfig(gradnorm_method="fast")


def test_egl_pp_with_a_functional_loss_records_what_auto_ran():
    """Issue 21 item 7 through the library: an MLP scored with ``F.smooth_l1_loss``."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 2))
    g = torch.Generator().manual_seed(1)
    pool, lab = torch.randn(6, 5, generator=g), (torch.randn(7, 5, generator=g),
                                                 torch.randn(7, 2, generator=g))  # fmt: skip

    def loss(pred, target):
        return F.smooth_l1_loss(pred, target, reduction="none").mean(1)

    kw = {"embedding": "1", "loss": loss, "k": 3, "perplexity": 2.0}
    auto = eglpp.score("egl++", model, pool, lab, **kw)
    vmap = eglpp.score("egl++", model, pool, lab, method="vmap", **kw)
    np.testing.assert_allclose(auto.scores, vmap.scores, rtol=1e-4)
    contract = eglpp.scoring.contract.ModelContract(model, embedding="1", loss=loss)
    pool_set, lab_set = as_dataset(pool, "unlabelled"), as_dataset(lab, "labelled")
    cache = LabelledCache(contract, lab_set, batch_size=4, device="cpu")
    inputs = pool_inputs(frozenset({"pair_gradnorms"}), contract, None, pool_set, lab_set,
                         cache=cache)  # fmt: skip
    inputs.pair_gradnorms(np.zeros((6, 2), int), "ground_truth")
    assert cache.gradnorm_method.startswith("hooks (per-layer norms of 2 layers")
