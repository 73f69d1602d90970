import math

import numpy as np
import pytest
import torch

from eglpp.pose.hourglass import HourglassConfig, StackedHourglass
from eglpp.pose.inference import evaluate, predict
from eglpp.pose.metrics import PCKMetric, head_size, pck, pckh_mean_joints, torso_size
from eglpp.pose.skeleton import LSP, MPII


def test_pck_hand_worked():
    # 3 examples, 2 joints; normalisers 10, 20, 5; alpha 0.5 -> thresholds 5, 10, 2.5
    gt = np.zeros((3, 2, 2))
    pred = np.array(
        [
            [[3.0, 4.0], [6.0, 0.0]],  # dist 5 (hit: <= 5), 6 (miss)
            [[0.0, 9.0], [0.0, 11.0]],  # 9 (hit), 11 (miss)
            [[2.0, 0.0], [0.0, 2.0]],  # 2 (hit), 2 (hit but not annotated)
        ]
    )
    visible = np.array([[True, True], [True, True], [True, False]])
    res = pck(pred, gt, visible, np.array([10.0, 20.0, 5.0]), alpha=0.5)
    np.testing.assert_allclose(res.per_joint, [1.0, 0.0])
    np.testing.assert_array_equal(res.counts, [3, 2])
    assert res.mean == pytest.approx(3 / 5)  # pooled: hits 3 of 5 annotated joints
    joint_avg = pck(pred, gt, visible, np.array([10.0, 20.0, 5.0]), 0.5, average="joint")
    assert joint_avg.mean == pytest.approx(0.5)
    only_first = pck(pred, gt, visible, np.array([10.0, 20.0, 5.0]), 0.5, mean_joints=[0])
    assert only_first.mean == 1.0


def test_non_finite_normaliser_leaves_example_out():
    gt = np.zeros((2, 1, 2))
    pred = np.array([[[1.0, 0.0]], [[100.0, 0.0]]])
    res = pck(pred, gt, np.ones((2, 1), bool), np.array([10.0, np.nan]), alpha=0.2)
    assert res.counts[0] == 1 and res.mean == 1.0
    none = pck(pred, gt, np.zeros((2, 1), bool), np.array([10.0, 10.0]), alpha=0.2)
    assert math.isnan(none.per_joint[0]) and math.isnan(none.mean)


def test_torso_size_lsp_and_paper_option():
    gt = np.zeros((1, 14, 2))
    gt[0, LSP.index("left_shoulder")] = [0.0, 0.0]
    gt[0, LSP.index("right_hip")] = [3.0, 4.0]  # diagonal 5
    gt[0, LSP.index("right_shoulder")] = [6.0, 0.0]
    gt[0, LSP.index("left_hip")] = [0.0, 8.0]  # other diagonal 10
    assert torso_size(gt, LSP)[0] == pytest.approx(5.0)
    assert torso_size(gt, LSP, mode="max_diagonal")[0] == pytest.approx(10.0)
    vis = np.ones((1, 14), bool)
    vis[0, LSP.index("left_hip")] = False
    assert torso_size(gt, LSP, mode="max_diagonal", visible=vis)[0] == pytest.approx(5.0)
    vis[0, LSP.index("right_hip")] = False
    assert math.isnan(torso_size(gt, LSP, visible=vis)[0])
    with pytest.raises(ValueError, match="mode"):
        torso_size(gt, LSP, mode="hips")
    with pytest.raises(ValueError, match="\\(N, 14, 2\\)"):
        torso_size(np.zeros((1, 16, 2)), LSP)


def test_head_size_and_pckh_joints():
    boxes = np.array([[10.0, 20.0, 40.0, 60.0]])  # 30 x 40 -> diagonal 50
    assert head_size(boxes)[0] == pytest.approx(30.0)
    assert head_size(boxes, factor=1.0)[0] == pytest.approx(50.0)
    joints = pckh_mean_joints(MPII)
    assert len(joints) == 14
    assert MPII.index("pelvis") not in joints and MPII.index("thorax") not in joints
    assert pckh_mean_joints(LSP) == list(range(14))
    with pytest.raises(ValueError, match="head_boxes"):
        head_size(np.zeros((2, 3)))


def test_pckh_mpii_mean_excludes_pelvis_and_thorax():
    N, J = 4, 16
    gt = np.zeros((N, J, 2))
    pred = np.zeros((N, J, 2))
    pred[:, MPII.index("pelvis")] = 100.0  # pelvis always wrong: must not lower the mean
    res = pck(
        pred,
        gt,
        np.ones((N, J), bool),
        head_size(np.tile([0, 0, 6, 8], (N, 1))),
        0.5,
        mean_joints=pckh_mean_joints(MPII),
    )
    assert res.mean == 1.0 and res.per_joint[MPII.index("pelvis")] == 0.0


def test_accumulator_equals_single_call():
    rng = np.random.default_rng(0)
    pred, gt = rng.normal(size=(50, 14, 2)), rng.normal(size=(50, 14, 2))
    vis = rng.random((50, 14)) > 0.1
    norm = rng.uniform(1, 5, 50)
    metric = PCKMetric(alpha=0.3, average="joint")
    for sl in (slice(0, 7), slice(7, 30), slice(30, 50)):
        metric.update(pred[sl], gt[sl], vis[sl], norm[sl])
    whole = pck(pred, gt, vis, norm, 0.3, average="joint")
    acc = metric.compute()
    np.testing.assert_allclose(acc.per_joint, whole.per_joint)
    assert acc.mean == pytest.approx(whole.mean)
    metric.reset()
    with pytest.raises(RuntimeError, match="before any update"):
        metric.compute()
    metric.update(pred, gt, vis, norm)
    with pytest.raises(ValueError, match="joints"):
        metric.update(pred[:, :3], gt[:, :3], vis[:, :3], norm)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="visible must have shape"):
        pck(np.zeros((2, 3, 2)), np.zeros((2, 3, 2)), np.ones((2, 4), bool), np.ones(2), 0.2)
    with pytest.raises(ValueError, match="normaliser"):
        pck(np.zeros((2, 3, 2)), np.zeros((2, 3, 2)), np.ones((2, 3), bool), np.ones(3), 0.2)
    with pytest.raises(ValueError, match="alpha"):
        pck(np.zeros((2, 3, 2)), np.zeros((2, 3, 2)), np.ones((2, 3), bool), np.ones(2), 0.0)


class _Fixed(torch.utils.data.Dataset):
    """Items of the pose dataset contract with the joints and head sizes given (MPII)."""

    skeleton = MPII

    def __init__(self, images, joints, head_size):
        self.images, self.joints, self.head_size = images, joints, head_size

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return {"image": self.images[i], "joints": torch.as_tensor(self.joints[i]).float(),
                "visible": torch.ones(16, dtype=torch.bool), "index": torch.tensor(i),
                "head_size": torch.tensor(float(self.head_size))}  # fmt: skip


def test_evaluate_pckh_is_mpiis_at_half_the_head_without_pelvis_and_thorax():
    """Ground truth placed from the model's own predictions: every joint 0.3 head sizes off
    (a hit at α = 0.5, a miss at 0.2), pelvis and thorax 2 head sizes off (misses, which MPII's
    mean leaves out): PCKh@0.5 must be exactly 1."""
    model = StackedHourglass(HourglassConfig(n_stacks=1, channels=8, depth=2, n_joints=16))
    model.reset_parameters(torch.Generator().manual_seed(0))
    images = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    pred = predict(model, _Fixed(images, np.zeros((3, 16, 2)), np.nan)).joints.astype(np.float64)
    hs = 10.0
    offset = np.full(16, 0.3 * hs)
    offset[[MPII.index("pelvis"), MPII.index("thorax")]] = 2.0 * hs
    gt = pred + np.stack([offset, np.zeros(16)], axis=1)[None]
    res = evaluate(model, _Fixed(images, gt, hs), metric="pckh")
    assert res["metric"] == "PCKh@0.5" and res["mean"] == 1.0
    assert res["per_joint"]["pelvis"] == 0.0 and res["per_joint"]["head_top"] == 1.0
    assert evaluate(model, _Fixed(images, gt, hs), metric="pckh", alpha=0.2)["mean"] == 0.0
