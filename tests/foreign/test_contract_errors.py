"""Bad input to ``eglpp.score`` / ``eglpp.select``: one-line errors naming the argument."""

from __future__ import annotations

import pytest
import torch
from foreign_networks import coordinate_net, simple_baseline, tabular_mlp

import eglpp
from eglpp.scoring.contract import ModelContract

EGL = {"k": 2, "perplexity": 1.5}


def _rand(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def _table():
    return tabular_mlp(4), _rand(6, 4), (_rand(5, 4, seed=1), _rand(5, 1, seed=2))


def _fails(match: str, *args, **kw) -> str:
    with pytest.raises((ValueError, TypeError), match=match) as err:
        eglpp.score(*args, **kw)
    assert "\n" not in str(err.value)
    return str(err.value)


def test_a_loss_returning_a_scalar_is_refused_naming_loss():
    net, pool, lab = _table()
    _fails(r"^loss: must return one loss per example, shape \(4,\), got \(\)", "egl++", net,
           pool, lab, embedding="1", loss=lambda p, y: ((p - y) ** 2).mean(), **EGL)  # fmt: skip


def test_a_prediction_not_shaped_like_the_targets_is_refused_naming_prediction():
    net, pool, (x, _) = _table()
    _fails(r"^prediction: the model predicts \(1,\) per example but the labelled targets are "
           r"\(3,\)", "egl++", net, pool, (x, _rand(5, 3)), embedding="1", **EGL)  # fmt: skip


def test_embeddings_of_different_widths_are_refused_naming_embedding():
    net = simple_baseline()
    lab = (_rand(4, 3, 64, 64), _rand(4, 14, 16, 16))
    _fails(r"^embedding 'layer4': embeddings of width 64 for the unlabelled inputs but 256 for "
           r"the labelled", "coreset", net, _rand(5, 3, 32, 32), lab, embedding="layer4",
           pooling="flatten")  # fmt: skip


def test_a_missing_embedding_layer_lists_the_modules():
    net, pool, lab = _table()
    _fails(r"^embedding 'fc': the model has no such submodule; its modules: 0, 1, 2, 3, 4$",
           "coreset", net, pool, lab, embedding="fc")  # fmt: skip


def test_a_missing_output_key_lists_the_keys():
    net = coordinate_net()
    lab = (_rand(4, 3, 32, 32), _rand(4, 14, 2))
    _fails(r"^prediction 'joints': the model's output has no such key; its keys: 'coords', "
           r"'features'", "egl++", net, _rand(3, 3, 32, 32), lab, prediction="joints",
           embedding="features", **EGL)  # fmt: skip


def test_not_a_module_and_no_embedding():
    with pytest.raises(TypeError, match=r"^model: expected a torch.nn.Module, got int"):
        ModelContract(3)
    net, pool, lab = _table()
    _fails(r"^embedding: this strategy needs embeddings", "egl++", net, pool, lab, **EGL)
    _fails(r"^learning-loss needs head=", "learning-loss", net, pool, lab)
    _fails(r"^labelled: strategy 'egl\+\+' needs a labelled set", "egl++", net, pool,
           embedding="1", **EGL)  # fmt: skip
