"""Per-example squared gradient norms against a naive per-(image, neighbour) autograd loop."""

from typing import NamedTuple

import numpy as np
import pytest
import torch
from torch import nn

from eglpp.gradnorm.base import GradNormConfig, select_parameters
from eglpp.gradnorm.exact import per_example_gradnorms
from eglpp.gradnorm.pool import pair_gradnorms
from eglpp.pose import hourglass as hg
from eglpp.pose.heatmaps import heatmap_loss


class _Out(NamedTuple):
    heatmaps: torch.Tensor
    embedding: torch.Tensor


class TinyPoseNet(nn.Module):
    """Conv → BN → ReLU → conv → 2 "stacks" of J heatmaps at half resolution, plus a linear."""

    def __init__(self, joints: int = 3, stacks: int = 2):
        super().__init__()
        self.J, self.S = joints, stacks
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.conv2 = nn.Conv2d(6, 6, 3, stride=2, padding=1)
        self.head = nn.Conv2d(6, stacks * joints, 1)
        self.mix = nn.Linear(4, 4)  # acts on the last axis of the heatmaps (w = 4)

    def forward(self, x):
        z = torch.relu(self.bn(self.conv1(x)))
        z = torch.relu(self.conv2(z))
        B, _, h, w = z.shape
        hm = self.mix(self.head(z)).reshape(B, self.S, self.J, h, w)
        return _Out(heatmaps=hm, embedding=z.mean(dim=(-2, -1)))


def _mse(pred, target, weight):
    """The training loss of the contract: mean over stacks, joints and pixels, joint-weighted."""
    sq = (pred - target[:, None]) ** 2
    return (sq.mean(dim=(1, 3, 4)) * weight).mean(dim=1).sum()


def _model(seed):
    g = torch.Generator().manual_seed(seed)
    model = TinyPoseNet()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=g))
        model.bn.running_mean.copy_(0.1 * torch.randn(6, generator=g))
        model.bn.running_var.copy_(1.0 + torch.rand(6, generator=g))
    model.train()  # the engine must switch batch norm to eval mode itself
    return model, g


def _naive(model, images, targets, weights, names):
    model.eval()
    out = torch.zeros(targets.shape[:2], dtype=torch.float64)
    params = dict(model.named_parameters())
    for b in range(images.shape[0]):
        for k in range(targets.shape[1]):
            loss = _mse(model(images[b : b + 1]).heatmaps, targets[b, k][None], weights[b, k][None])
            grads = torch.autograd.grad(loss, [params[n] for n in names])
            out[b, k] = sum(g.double().pow(2).sum() for g in grads)
    model.train()
    return out


def _data(g, B=3, K=4):
    images = torch.randn(B, 3, 8, 8, generator=g)
    targets = torch.rand(B, K, 3, 4, 4, generator=g)
    weights = (torch.rand(B, K, 3, generator=g) > 0.3).float()
    return images, targets, weights


@pytest.mark.parametrize("params", ["all", "conv_linear", "last"])
def test_equals_naive_autograd_loop(params):
    model, g = _model(0)
    images, targets, weights = _data(g)
    names = select_parameters(model, params, images)
    got = per_example_gradnorms(
        model, images, targets, weights, config=GradNormConfig(params=params), loss_fn=_mse
    )
    expected = _naive(model, images, targets, weights, names)
    np.testing.assert_allclose(got.double().numpy(), expected.numpy(), rtol=1e-4)
    assert model.training and model.bn.training  # flags restored


def test_parameter_selections():
    model, g = _model(1)
    x = torch.zeros(1, 3, 8, 8)
    assert "bn.weight" in select_parameters(model, "all")
    cl = select_parameters(model, "conv_linear")
    assert "bn.weight" not in cl and "conv1.weight" in cl and "mix.bias" in cl
    assert select_parameters(model, "last", x) == ["mix.weight", "mix.bias"]
    assert select_parameters(model, ("head.",)) == ["head.weight", "head.bias"]
    with pytest.raises(ValueError, match="selects no trainable"):
        select_parameters(model, ("nothing.",))


def test_k_chunks_and_training_loss_agree():
    model, g = _model(2)
    images, targets, weights = _data(g, B=2, K=5)
    full = per_example_gradnorms(model, images, targets, weights, loss_fn=heatmap_loss)
    chunked = per_example_gradnorms(
        model, images, targets, weights, config=GradNormConfig(k_chunk=2), loss_fn=_mse
    )
    torch.testing.assert_close(full, chunked, rtol=1e-5, atol=0)
    n_params = sum(p.numel() for p in model.parameters())
    tight = GradNormConfig(max_grad_elements=3 * n_params)  # 1 image × 3 targets at a time
    assert tight.chunks(2, 5, n_params) == (1, 3)
    small = per_example_gradnorms(model, images, targets, weights, config=tight, loss_fn=_mse)
    torch.testing.assert_close(full, small, rtol=1e-5, atol=0)


def test_pair_gradnorms_gathers_neighbour_targets_in_batches():
    model, g = _model(3)
    U, L = 5, 6
    images = torch.randn(U, 3, 8, 8, generator=g)
    y = torch.rand(L, 3, 4, 4, generator=g)
    w = torch.ones(L, 3)
    nb = np.array([[0, 1], [5, 2], [3, 3], [4, 0], [1, 5]])
    got = pair_gradnorms(model, images, y, w, nb, batch_size=2, loss_fn=_mse)
    expected = _naive(model, images, y[nb], w[nb], select_parameters(model, "all"))
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-4)
    # an iterable of dict batches (a DataLoader over the pool) gives the same
    batches = [{"image": images[:3]}, {"image": images[3:]}]
    np.testing.assert_allclose(
        pair_gradnorms(model, batches, y, w, nb, loss_fn=_mse), got, rtol=1e-5
    )


def test_stacked_hourglass_equals_naive_loop():
    model = hg.StackedHourglass(hg.HourglassConfig(n_stacks=2, channels=8, n_joints=3, depth=1))
    g = torch.Generator().manual_seed(4)
    if hasattr(model, "reset_parameters"):
        model.reset_parameters(g)
    images = torch.randn(2, 3, 16, 16, generator=g)
    targets = torch.rand(2, 3, 3, 4, 4, generator=g)
    weights = torch.ones(2, 3, 3)
    got = per_example_gradnorms(model, images, targets, weights, loss_fn=_mse)
    expected = _naive(model, images, targets, weights, select_parameters(model, "all"))
    np.testing.assert_allclose(got.double().numpy(), expected.numpy(), rtol=1e-4)


def test_bad_inputs():
    model, g = _model(5)
    images, targets, weights = _data(g)
    with pytest.raises(ValueError, match="weights"):
        per_example_gradnorms(model, images, targets, weights[:, :2], loss_fn=_mse)
    with pytest.raises(ValueError, match="neighbours must be positions"):
        pair_gradnorms(model, images, targets[0], weights[0], np.array([[0, 9]] * 3), loss_fn=_mse)
    with pytest.raises(ValueError, match="yielded 3 rows"):
        pair_gradnorms(model, images, targets[0], weights[0], np.zeros((4, 1), int), loss_fn=_mse)
    with pytest.raises(ValueError, match="params"):
        GradNormConfig(params="bn")


def test_chunk_sizes_follow_the_memory_budget():
    assert GradNormConfig().budget("cpu") == 2**27
    cfg = GradNormConfig(max_grad_elements=100)
    assert cfg.budget("cpu") == 100
    # 10 parameters: 10 targets fill the budget, so one image per chunk
    assert cfg.chunks(8, 30, 10) == (1, 10)
    assert cfg.chunks(8, 4, 10) == (2, 4)  # 4 targets × 10 = 40 per image: 2 images
    assert GradNormConfig(max_grad_elements=100, k_chunk=3).chunks(8, 30, 10) == (3, 3)
    assert cfg.chunks(8, 30, 1000) == (1, 1)  # never below one of each
    with pytest.raises(ValueError, match="max_grad_elements"):
        GradNormConfig(max_grad_elements=0)


def _all_sign_patterns(K):
    grid = np.array(np.meshgrid(*[[-1.0, 1.0]] * K, indexing="ij")).reshape(K, -1).T
    return torch.as_tensor(grid, dtype=torch.float32)  # (2^K, K)


def test_probe_estimator_is_exact_over_all_sign_patterns():
    from eglpp.gradnorm.approx import expected_gradnorms

    model, g = _model(6)
    images, targets, weights = _data(g, B=2, K=3)
    p = torch.rand(2, 3, generator=g)
    exact = (p * per_example_gradnorms(model, images, targets, weights, loss_fn=_mse)).sum(1)
    signs = _all_sign_patterns(3)[None].expand(2, -1, -1)  # averaging over every ε: E[εε'] = I
    got = expected_gradnorms(model, images, targets, weights, p, signs, n_exact=0, loss_fn=_mse)
    torch.testing.assert_close(got, exact, rtol=1e-4, atol=0)
    # no probes: only the mean-cotangent term, a lower bound (Jensen)
    low = expected_gradnorms(
        model, images, targets, weights, p, signs[:, :0], n_exact=0, loss_fn=_mse
    )
    assert (low <= exact * (1 + 1e-5)).all() and (low > 0).all()


@pytest.mark.parametrize("method", ["vmap", "hooks"])
def test_head_tail_estimator_exact_cases(method):
    from eglpp.gradnorm.approx import expected_gradnorms

    model, g = _model(9)
    B, K = 2, 4
    images, targets, weights = _data(g, B=B, K=K)
    p = torch.rand(B, K, generator=g)
    cfg = GradNormConfig(method=method)
    pairs = per_example_gradnorms(model, images, targets, weights, loss_fn=_mse)
    exact = (p * pairs).sum(1)
    none = torch.zeros(B, 0, K)
    for n_exact in (K, K + 3):  # every neighbour in the head: the exact sum, probes unused
        got = expected_gradnorms(
            model, images, targets, weights, p, none, n_exact=n_exact, config=cfg, loss_fn=_mse
        )
        torch.testing.assert_close(got, exact, rtol=1e-4, atol=0)
    # one neighbour in the tail: its mean cotangent is its own, the spread is zero
    got = expected_gradnorms(
        model, images, targets, weights, p, none, n_exact=K - 1, config=cfg, loss_fn=_mse
    )
    torch.testing.assert_close(got, exact, rtol=1e-4, atol=0)
    # head of 1 + every sign pattern of the 3-neighbour tail: exact in expectation, exactly
    signs = _all_sign_patterns(K)[None].expand(B, -1, -1)
    got = expected_gradnorms(
        model, images, targets, weights, p, signs, n_exact=1, config=cfg, loss_fn=_mse
    )
    torch.testing.assert_close(got, exact, rtol=1e-4, atol=0)
    # no probes: the head exactly plus a lower bound of the tail, the head being the largest p
    low = expected_gradnorms(
        model, images, targets, weights, p, none, n_exact=2, config=cfg, loss_fn=_mse
    )
    head = p.argsort(1, descending=True)[:, :2]
    head_sum = (p.gather(1, head) * pairs.gather(1, head)).sum(1)
    assert (low <= exact * (1 + 1e-5)).all() and (low > head_sum).all()
    with pytest.raises(ValueError, match="n_exact"):
        expected_gradnorms(model, images, targets, weights, p, none, n_exact=-1, loss_fn=_mse)


@pytest.mark.parametrize("params", ["all", "conv_linear"])
def test_probe_estimator_hooks_equals_vmap(params):
    from eglpp.gradnorm.approx import expected_gradnorms

    model, g = _model(8)
    images, targets, weights = _data(g, B=3, K=4)
    p = torch.rand(3, 4, generator=g)
    signs = torch.randint(0, 2, (3, 2, 4), generator=g).float() * 2 - 1
    by_vmap = expected_gradnorms(
        model,
        images,
        targets,
        weights,
        p,
        signs,
        n_exact=0,
        config=GradNormConfig(params=params),
        loss_fn=_mse,
    )
    for k_chunk in (None, 2):  # all R + 1 cotangents in one backward, or two backwards
        cfg = GradNormConfig(params=params, method="hooks", k_chunk=k_chunk)
        by_hooks = expected_gradnorms(
            model, images, targets, weights, p, signs, n_exact=0, config=cfg, loss_fn=_mse
        )
        torch.testing.assert_close(by_hooks, by_vmap, rtol=1e-4, atol=0)
    cfg = GradNormConfig(params=params, method="hooks")
    mean_only = expected_gradnorms(
        model, images, targets, weights, p, signs[:, :0], n_exact=0, config=cfg, loss_fn=_mse
    )
    assert (mean_only < by_vmap).all()


def test_expected_pair_gradnorms_matches_exact_in_expectation():
    from eglpp.gradnorm.approx import expected_pair_gradnorms

    model, g = _model(7)
    U, L, K = 4, 5, 3
    images = torch.randn(U, 3, 8, 8, generator=g)
    y, w = torch.rand(L, 3, 4, 4, generator=g), torch.ones(L, 3)
    nb = np.array([[0, 1, 2], [3, 4, 0], [1, 1, 2], [4, 3, 2]])
    p = np.random.default_rng(0).random((U, K))
    exact = (p * pair_gradnorms(model, images, y, w, nb, loss_fn=_mse)).sum(1)
    est = expected_pair_gradnorms(
        model, images, y, w, nb, p, n_exact=0, n_probes=400, seed=1, batch_size=3, loss_fn=_mse
    )
    np.testing.assert_allclose(est, exact, rtol=0.1)
    same = expected_pair_gradnorms(
        model, images, y, w, nb, p, n_exact=0, n_probes=400, seed=1, batch_size=2, loss_fn=_mse
    )
    # signs do not depend on batching (float32 sums of 400 probes differ by batch shape ~1e-5)
    np.testing.assert_allclose(same, est, rtol=1e-4)


@pytest.mark.parametrize("params", ["all", "conv_linear"])
def test_hooks_equal_naive_loop_and_vmap(params, monkeypatch):
    model, g = _model(8)
    images, targets, weights = _data(g)
    K = targets.shape[1]
    expected = _naive(model, images, targets, weights, select_parameters(model, params))
    backwards, real_grad = [], torch.autograd.grad

    def counting_grad(*args, **kwargs):
        if kwargs.get("is_grads_batched"):  # the backwards carrying cotangents (not torch.func's)
            backwards.append(1)
        return real_grad(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", counting_grad)
    for cfg, n_backward in (
        (GradNormConfig(params=params, method="hooks", k_chunk=3), -(-K // 3)),
        (GradNormConfig(params=params, method="hooks"), 1),  # all K in one backward
        # one (image, target) pair at a time: the images are halved until one fits
        (GradNormConfig(params=params, method="hooks", max_grad_elements=1), K * len(images)),
    ):
        backwards.clear()
        got = per_example_gradnorms(model, images, targets, weights, config=cfg, loss_fn=_mse)
        np.testing.assert_allclose(got.double().numpy(), expected.numpy(), rtol=1e-4)
        assert len(backwards) == n_backward
    assert model.training


def test_hooks_on_stacked_hourglass():
    model = hg.StackedHourglass(hg.HourglassConfig(n_stacks=2, channels=8, n_joints=3, depth=2))
    g = torch.Generator().manual_seed(9)
    model.reset_parameters(g)
    images = torch.randn(2, 3, 32, 32, generator=g)
    targets, weights = torch.rand(2, 3, 3, 8, 8, generator=g), torch.ones(2, 3, 3)
    vm = per_example_gradnorms(model, images, targets, weights, loss_fn=_mse)
    hk = per_example_gradnorms(
        model, images, targets, weights, config=GradNormConfig(method="hooks"), loss_fn=_mse
    )
    torch.testing.assert_close(hk, vm, rtol=1e-4, atol=0)


def test_ghost_norm_equals_direct_per_example_gradient():
    from eglpp.gradnorm.layers import weight_norms as _weight_norms

    g = torch.Generator().manual_seed(10)
    a = torch.randn(3, 2, 8, generator=g, dtype=torch.float64)  # B, P=2 positions, fan-in 8
    gr = torch.randn(4, 3, 2, 8, generator=g, dtype=torch.float64)  # K, B, P, C_out
    direct = torch.einsum("kbpo,bpi->kboi", gr, a).pow(2).sum((-1, -2))
    torch.testing.assert_close(_weight_norms(a, gr), direct)  # P small: the ghost branch


def test_hooks_reject_batch_norm_without_running_statistics():
    from eglpp.gradnorm.hooks import hook_gradnorms

    model = nn.Sequential(nn.Conv2d(3, 2, 1), nn.BatchNorm2d(2, track_running_stats=False))
    x, y, w = torch.randn(2, 3, 4, 4), torch.rand(2, 2, 2, 4, 4), torch.ones(2, 2, 2)
    with pytest.raises(ValueError, match="1 .BatchNorm2d. has no running statistics"):
        hook_gradnorms(model, x, y, w, loss_fn=_mse)
    with pytest.raises(ValueError, match="hooks"):
        GradNormConfig(method="hooks", params="last")


def test_progress_counts_the_rows_after_each_batch():
    from eglpp.gradnorm.approx import expected_pair_gradnorms
    from eglpp.gradnorm.sharded import sharded_pair_gradnorms

    model, g = _model(8)
    images = torch.randn(5, 3, 8, 8, generator=g)
    y, w = torch.rand(6, 3, 4, 4, generator=g), torch.ones(6, 3)
    nb = np.array([[0, 1], [5, 2], [3, 3], [4, 0], [1, 5]])
    seen = []

    def record(done, total):
        seen.append((done, total))

    quiet = pair_gradnorms(model, images, y, w, nb, batch_size=2, loss_fn=_mse)
    told = sharded_pair_gradnorms(
        model, images, y, w, nb, batch_size=2, loss_fn=_mse, progress=record
    )
    assert seen == [(2, 5), (4, 5), (5, 5)]
    np.testing.assert_array_equal(told, quiet)  # the callback changes nothing
    seen.clear()
    p = np.full(nb.shape, 0.5)
    expected_pair_gradnorms(model, images, y, w, nb, p, batch_size=3, loss_fn=_mse, progress=record)
    assert seen == [(3, 5), (5, 5)]
