import pytest
import torch
from torch.func import functional_call, grad, vmap

from eglpp.pose.hourglass import HourglassConfig, HourglassOutput, StackedHourglass


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One intra-op thread: on shared, busy cores two OpenMP threads run 10-20× slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _tiny(**kw):
    cfg = dict(n_stacks=2, channels=16, n_joints=5, depth=2)
    cfg.update(kw)
    return StackedHourglass(HourglassConfig(**cfg))


def test_output_shapes_and_features():
    model = _tiny(depth=3)
    out = model(torch.rand(3, 3, 64, 64), return_features=True)
    assert isinstance(out, HourglassOutput)
    assert out.heatmaps.shape == (3, 2, 5, 16, 16)
    assert out.embedding.shape == (3, 16)
    assert [tuple(f.shape) for f in out.features] == [(3, 16, 16, 16), (3, 16, 8, 8), (3, 16, 4, 4)]
    assert model.feature_channels() == (16, 16, 16)
    assert model(torch.rand(1, 3, 64, 32)).features is None


def test_embedding_is_pooled_input_of_last_head():
    model = _tiny().eval()
    captured = {}
    head = model.stacks[-1].head
    handle = head.register_forward_hook(lambda m, inp, out: captured.update(x=inp[0]))
    out = model(torch.rand(2, 3, 32, 32))
    handle.remove()
    torch.testing.assert_close(out.embedding, captured["x"].mean(dim=(2, 3)))
    # the head is linear in its input: the last stack's heatmaps come from those features
    torch.testing.assert_close(out.heatmaps[:, -1], head(captured["x"]))


def test_stack_count_and_intermediate_merge():
    model = _tiny(n_stacks=3)
    assert len(model.stacks) == 3 and len(model.merges) == 2
    one = _tiny(n_stacks=1)
    assert len(one.merges) == 0
    # every parameter receives a gradient from a loss on all stacks (no unused layers)
    out = model(torch.rand(2, 3, 32, 32), return_features=True)
    out.heatmaps.square().mean().backward()
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    assert unused == []


def test_paper_size_parameter_count():
    model = StackedHourglass(HourglassConfig(n_stacks=2, channels=256, n_joints=16))
    n = sum(p.numel() for p in model.parameters())
    assert 6e6 < n < 7.5e6  # Newell's 8-stack is ~25M; two stacks are ~6.6M


@pytest.mark.parametrize("size", [(60, 64), (64, 40), (63, 63)])
def test_bad_input_size_raises(size):
    model = _tiny(depth=2)  # needs multiples of 16
    with pytest.raises(ValueError, match="divisible by 4·2\\^2 = 16"):
        model(torch.rand(1, 3, *size))


def test_bad_channels_raise():
    with pytest.raises(ValueError, match="images \\(B, 3, H, W\\)"):
        _tiny()(torch.rand(1, 1, 32, 32))
    with pytest.raises(ValueError, match="channels"):
        HourglassConfig(channels=30)
    with pytest.raises(ValueError, match="depth"):
        HourglassConfig(depth=0)


def test_per_example_gradients_with_vmap_match_loop():
    model = _tiny(n_stacks=1, depth=1).eval()
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = dict(model.named_buffers())
    x = torch.rand(3, 3, 16, 16)
    target = torch.rand(3, 1, 5, 4, 4)

    def loss(p, xi, ti):
        out = functional_call(model, (p, buffers), (xi[None],))
        return (out.heatmaps[0] - ti).square().mean()

    batched = vmap(grad(loss), in_dims=(None, 0, 0))(params, x, target)
    for i in range(3):
        model.zero_grad()
        model(x[i : i + 1]).heatmaps[0].sub(target[i]).square().mean().backward()
        for name, p in model.named_parameters():
            torch.testing.assert_close(batched[name][i], p.grad, rtol=1e-4, atol=1e-6)


def test_reset_parameters_is_reproducible_from_a_generator():
    a = _tiny().reset_parameters(torch.Generator().manual_seed(3))
    b = _tiny().reset_parameters(torch.Generator().manual_seed(3))
    c = _tiny().reset_parameters(torch.Generator().manual_seed(4))
    for (name, pa), pb, pc in zip(
        a.state_dict().items(), b.state_dict().values(), c.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(pa, pb)
        if name.endswith("conv.weight"):
            assert not torch.equal(pa, pc)
    # PyTorch's default bound for a conv weight: 1/sqrt(fan_in)
    w = a.stem.conv.weight
    assert w.abs().max() <= (w[0].numel()) ** -0.5
