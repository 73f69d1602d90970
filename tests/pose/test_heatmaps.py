import numpy as np
import pytest
import torch
from scipy import stats as sps

from eglpp.pose.heatmaps import (
    decode_heatmaps,
    flip_heatmaps,
    flip_joints,
    gaussian_heatmaps,
    heatmap_loss,
    heatmap_loss_per_example,
    heatmap_to_input,
    input_to_heatmap,
)
from eglpp.pose.skeleton import LSP


def test_coordinate_maps_are_inverse_and_pixel_centred():
    xy = torch.tensor([[-0.5, 0.0], [1.5, 3.0], [63.5, 255.0]])
    torch.testing.assert_close(heatmap_to_input(input_to_heatmap(xy, 4), 4), xy)
    # input pixels 0..3 form heatmap pixel 0: their centre 1.5 maps to heatmap 0.0
    assert float(input_to_heatmap(torch.tensor(1.5), 4)) == 0.0
    # left edge of the image (-0.5) is the left edge of the heatmap
    assert float(input_to_heatmap(torch.tensor(-0.5), 4)) == -0.5
    assert input_to_heatmap(np.array([255.0]), 4)[0] == pytest.approx(63.375)


def test_gaussian_matches_scipy_density():
    joints = torch.tensor([[[3.3, 5.8], [0.0, 0.0]]])
    visible = torch.tensor([[True, False]])
    hm = gaussian_heatmaps(joints, visible, (9, 7), sigma=1.75)
    assert hm.shape == (1, 2, 9, 7)
    v, u = np.mgrid[0:9, 0:7]
    pdf = sps.multivariate_normal(mean=[3.3, 5.8], cov=1.75**2).pdf(np.dstack([u, v]))
    expected = pdf * 2 * np.pi * 1.75**2  # unnormalised: peak 1 at the centre
    np.testing.assert_allclose(hm[0, 0].numpy(), expected, rtol=1e-5, atol=1e-7)
    assert hm[0, 1].abs().max() == 0


def test_decode_of_encode_within_quarter_pixel_property():
    rng = np.random.default_rng(0)
    n, H, W = 400, 16, 20
    xy = np.stack([rng.uniform(1, W - 2, n), rng.uniform(1, H - 2, n)], -1)
    joints = torch.tensor(xy, dtype=torch.float32).reshape(n, 1, 2)
    for sigma in (1.0, 1.75):
        hm = gaussian_heatmaps(joints, torch.ones(n, 1, dtype=torch.bool), (H, W), sigma)
        coords, maxvals = decode_heatmaps(hm)
        err = (coords - joints).abs()
        assert err.max() <= 0.25 + 1e-5
        # argmax alone would be off by up to 0.5: the shift halves the worst case
        assert (joints - joints.round()).abs().max() > 0.45
        # the maximum is the target's value at the nearest pixel centre
        d2 = (joints - joints.round()).square().sum(-1)
        torch.testing.assert_close(maxvals, torch.exp(-d2 / (2 * sigma**2)))


def test_decode_hand_worked_and_border():
    hm = torch.zeros(1, 3, 4, 5)
    hm[0, 0, 2, 1], hm[0, 0, 2, 2], hm[0, 0, 1, 1] = 1.0, 0.5, 0.2  # right and up neighbours
    hm[0, 1, 0, 4], hm[0, 1, 0, 3] = 2.0, 1.0  # corner: no shift on either axis past the edge
    hm[0, 2, 1, 2] = 1.0  # isolated: no shift
    coords, maxvals = decode_heatmaps(hm)
    torch.testing.assert_close(coords[0], torch.tensor([[1.25, 1.75], [4.0, 0.0], [2.0, 1.0]]))
    torch.testing.assert_close(maxvals[0], torch.tensor([1.0, 2.0, 1.0]))


def test_flip_round_trip_and_consistency_with_mirrored_joints():
    rng = np.random.default_rng(1)
    perm = LSP.flip_permutation()
    J, H, W = LSP.n_joints, 16, 16
    joints = torch.tensor(rng.uniform(1, 14, (2, J, 2)), dtype=torch.float32)
    visible = torch.tensor(rng.random((2, J)) > 0.2)
    hm = gaussian_heatmaps(joints, visible, (H, W), 1.0)
    torch.testing.assert_close(flip_heatmaps(flip_heatmaps(hm, perm), perm), hm)
    mirrored = gaussian_heatmaps(flip_joints(joints, W, perm), visible[:, perm], (H, W), 1.0)
    torch.testing.assert_close(flip_heatmaps(hm, perm), mirrored, atol=1e-6, rtol=1e-5)
    # a right-ankle map moves to the left-ankle channel, mirrored
    right, left = LSP.index("right_ankle"), LSP.index("left_ankle")
    torch.testing.assert_close(flip_heatmaps(hm, perm)[:, left], hm[:, right].flip(-1))
    # in input pixels the heatmap mirror is the image mirror (stride 4, width 64)
    x_in = torch.tensor([10.0])
    x_h_flip = W - 1 - input_to_heatmap(x_in, 4)
    torch.testing.assert_close(heatmap_to_input(x_h_flip, 4), 64 - 1 - x_in)
    with pytest.raises(ValueError, match="permutation"):
        flip_heatmaps(hm, [0] * J)


def test_loss_hand_worked_and_masking():
    B, S, J, H, W = 2, 3, 4, 5, 6
    gen = torch.Generator().manual_seed(0)
    pred = torch.rand(B, S, J, H, W, generator=gen)
    target = torch.rand(B, J, H, W, generator=gen)
    weight = torch.tensor([[1, 1, 0, 1], [0, 0, 0, 0]], dtype=torch.float32)
    per = heatmap_loss_per_example(pred, target, weight)
    p, t = pred.numpy().astype(np.float64), target.numpy().astype(np.float64)
    expected0 = sum(((p[0, s, j] - t[0, j]) ** 2).sum() for s in range(S) for j in (0, 1, 3))
    np.testing.assert_allclose(per[0].item(), expected0 / (S * J * H * W), rtol=1e-5)
    assert per[1].item() == 0.0
    torch.testing.assert_close(heatmap_loss(pred, target, weight), per.mean())
    # a masked joint's prediction does not change the loss
    pred2 = pred.clone()
    pred2[0, :, 2] += 5
    torch.testing.assert_close(heatmap_loss_per_example(pred2, target, weight.bool()), per)
    with pytest.raises(ValueError, match="target must have shape"):
        heatmap_loss(pred, target[:, :2], weight)
