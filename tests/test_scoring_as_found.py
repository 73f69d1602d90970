"""``eglpp.score``/``select`` leave the caller's model as they found it (issue 21, item 8).

Scoring moves the model (and a Learning Loss head) to ``device`` and into eval mode; the caller
gets back the same Parameter objects holding the same tensors, with each submodule's train/eval
flag, each parameter's ``requires_grad`` and ``grad`` and each buffer as before: after a
successful call, after an exception half-way, and for a device that cannot work (refused before
anything moves, in one line naming ``device``).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import eglpp
from eglpp.scoring.api import as_found
from eglpp.strategies.learning_loss import LearningLoss


def _net() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 1))
    net.train()
    net[1].eval()  # a submodule of its own mode
    net[0].bias.requires_grad_(False)  # a frozen parameter
    net[3].weight.grad = torch.full_like(net[3].weight, 0.5)  # a gradient the caller holds
    return net


def _state(module: nn.Module) -> dict:
    """Everything the caller can see: objects, tensors, devices, flags."""
    return {
        "params": [
            (n, id(p), p.data_ptr(), p.device, p.requires_grad, p.detach().clone())
            for n, p in module.named_parameters()
        ],
        "grads": [
            (n, None if p.grad is None else p.grad.clone()) for n, p in module.named_parameters()
        ],
        "buffers": [(n, b.device, b.clone()) for n, b in module.named_buffers()],
        "training": [(n, m.training) for n, m in module.named_modules()],
    }


def _same(a: dict, b: dict) -> None:
    assert a["training"] == b["training"]
    for (n, i, ptr, dev, rg, t), (_, i2, ptr2, dev2, rg2, t2) in zip(
        a["params"], b["params"], strict=True
    ):
        assert (i, ptr, dev, rg) == (i2, ptr2, dev2, rg2), n
        assert torch.equal(t, t2), n
    for (n, g), (_, g2) in zip(a["grads"], b["grads"], strict=True):
        assert (g is None) == (g2 is None) and (g is None or torch.equal(g, g2)), n
    for (n, dev, t), (_, dev2, t2) in zip(a["buffers"], b["buffers"], strict=True):
        assert dev == dev2 and torch.equal(t, t2), n


def _data():
    g = torch.Generator().manual_seed(0)
    X, Y = torch.randn(10, 3, generator=g), torch.randn(10, 1, generator=g)
    return torch.randn(12, 3, generator=g), (X, Y)


EGL = {"embedding": "2", "k": 4, "perplexity": 3}


def test_a_call_leaves_the_model_as_found():
    net, (pool, lab) = _net(), _data()
    before = _state(net)
    eglpp.score("egl++", net, pool, lab, **EGL)
    _same(before, _state(net))


def test_an_exception_half_way_leaves_the_model_as_found():
    """The loss fails in the gradient-norm pass, after the forward passes moved the model and
    put it in eval mode."""
    net, (pool, lab) = _net(), _data()
    before, calls = _state(net), []

    def loss(pred, target):
        calls.append(1)
        raise RuntimeError("the user's loss fails")

    with pytest.raises(RuntimeError, match="the user's loss fails"):
        eglpp.score("egl++", net, pool, lab, loss=loss, **EGL)
    assert calls  # it failed where meant to, not before
    _same(before, _state(net))


@pytest.mark.parametrize(
    "device, message",
    [
        ("meta", r"^device 'meta': only cpu and cuda devices are supported$"),
        ("tpu", r"^device 'tpu': not a torch device \(expected cpu, cuda or cuda:N\)$"),
        pytest.param("cuda", r"^device 'cuda': CUDA is not available here \(torch .*\); use "
                     r"device cpu or install a CUDA build of PyTorch$",
                     marks=pytest.mark.skipif(torch.cuda.is_available(), reason="has CUDA")),
    ],
)  # fmt: skip
def test_a_device_that_cannot_work_is_named_before_the_model_moves(device, message):
    net, (pool, lab) = _net(), _data()
    before = _state(net)
    with pytest.raises(ValueError, match=message):
        eglpp.score("egl++", net, pool, lab, device=device, **EGL)
    _same(before, _state(net))


def test_the_learning_loss_head_is_left_as_found():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)).train()  # fmt: skip
    head = LearningLoss(hidden=4).auxiliary((4,)).train()
    pool = torch.randn(6, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    before, before_head = _state(net), _state(head)
    eglpp.score("learning-loss", net, pool, None, features=("2",), head=head)
    _same(before, _state(net))
    _same(before_head, _state(head))


def test_as_found_restores_weights_moved_or_replaced():
    """The weights survive a move that loses them (the meta device holds no data), whether
    the move makes new Parameter objects or sets the data of the same ones (as torch does
    between cpu and cuda; here to other tensors of another dtype, since no cpu tensor's data
    can be set to a meta one)."""
    for same_objects in (False, True):
        net = _net()
        before = _state(net)
        with pytest.raises(RuntimeError, match="half-way"), as_found(net):
            if same_objects:
                for p in net.parameters():
                    p.data = torch.zeros_like(p.data, dtype=torch.float64)
                    p.grad = None
                    p.requires_grad_(not p.requires_grad)
            else:
                net.to("meta")
            net.eval()
            raise RuntimeError("half-way")
        _same(before, _state(net))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_scoring_on_the_gpu_leaves_a_cpu_model_on_the_cpu():
    net, (pool, lab) = _net(), _data()
    before = _state(net)
    on_gpu = eglpp.score("egl++", net, pool, lab, device="cuda", **EGL)
    _same(before, _state(net))
    on_cpu = eglpp.score("egl++", net, pool, lab, **EGL)
    torch.testing.assert_close(
        torch.as_tensor(on_gpu.scores), torch.as_tensor(on_cpu.scores), rtol=1e-4, atol=1e-6
    )
