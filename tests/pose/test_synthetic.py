"""Rendered people: determinism, exact joint placement, pose arrays, domains, sizes, errors."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial import procrustes

from eglpp.pose.datasets.kinematics import (
    PoseSet,
    poses_from_array,
    poses_from_joints_mat,
    sample_prior_pose,
)
from eglpp.pose.datasets.render import Layers, composite
from eglpp.pose.datasets.scene import JOINT_PARTS
from eglpp.pose.datasets.synthetic import (
    RenderConfig,
    SyntheticPoseDataset,
    render_items,
    render_scenes,
    sample_items,
)
from eglpp.pose.skeleton import LSP, MPII

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def _one_layer(start, end, radius, size=32, box=False) -> Layers:
    def t(values, dtype=torch.float32):
        return torch.tensor(values, dtype=dtype).view(1, 1, -1).squeeze(-1)

    return Layers(
        start=torch.tensor([[start]], dtype=torch.float32),
        end=torch.tensor([[end]], dtype=torch.float32),
        radius=t([radius]),
        box=t([box], torch.bool),
        colour=torch.ones(1, 1, 3),
        opacity=torch.ones(1, 1),
        texture=torch.zeros(1, 1, 4),
        shading=torch.zeros(1, 1),
    )


def test_rasteriser_follows_pixel_centre_convention_and_matches_supersampling():
    # A disc at (x, y) = (10.3, 20.7): its intensity centroid is its centre, x indexes columns.
    image, _ = composite(_one_layer((10.3, 20.7), (10.3, 20.7), 4.0), torch.zeros(1, 3, 32, 32))
    mass = image[0, 0].numpy().astype(np.float64)
    rows, cols = np.mgrid[0:32, 0:32]
    assert (mass * cols).sum() / mass.sum() == pytest.approx(10.3, abs=0.01)
    assert (mass * rows).sum() / mass.sum() == pytest.approx(20.7, abs=0.01)
    # Oracle: coverage by 16×16 supersampling of each pixel [i - 0.5, i + 0.5].
    sub = (np.arange(16) + 0.5) / 16 - 0.5
    ys = (rows[..., None, None] + sub[:, None]).astype(np.float64)
    xs = (cols[..., None, None] + sub[None, :]).astype(np.float64)
    covered = (np.hypot(xs - 10.3, ys - 20.7) < 4.0).mean((-1, -2))
    assert np.abs(mass - covered).max() < 0.12
    assert mass.sum() == pytest.approx(np.pi * 16, rel=0.01)
    # A box from x = 4 to 20, y in [7, 11]: rows 8–10 covered, rows 7 and 11 (±0.5 px) half.
    box, _ = composite(
        _one_layer((4.0, 9.0), (20.0, 9.0), 2.0, box=True), torch.zeros(1, 3, 32, 32)
    )
    band = box[0, 0, :, 12].numpy()
    np.testing.assert_allclose(band[8:11], 1.0, atol=1e-6)
    assert band[7] == pytest.approx(0.5, abs=1e-6) and band[11] == pytest.approx(0.5, abs=1e-6)
    assert band[:7].max() == 0 and band[12:].max() == 0
    row = box[0, 0, 9].numpy()  # the ends: x = 4 and 20 are pixel centres, half covered
    assert row[4] == pytest.approx(0.5) and row[20] == pytest.approx(0.5) and row[3] == 0


def test_same_seed_same_images_whatever_the_batch():
    config = RenderConfig(size=32, domain="lspet")
    whole = render_items(range(6), config, seed=5)
    parts = [render_items(idx, config, seed=5) for idx in ([0, 1, 2], [3], [4, 5])]
    assert torch.equal(whole.images, torch.cat([p.images for p in parts]))
    np.testing.assert_array_equal(whole.joints, np.concatenate([p.joints for p in parts]))
    np.testing.assert_array_equal(whole.occluded, np.concatenate([p.occluded for p in parts]))
    reordered = render_items([5, 2], config, seed=5)
    assert torch.equal(reordered.images, whole.images[[5, 2]])
    a = SyntheticPoseDataset(7, config, seed=3, chunk_size=2)
    b = SyntheticPoseDataset(7, config, seed=3, chunk_size=7)
    assert torch.equal(a.images, b.images)
    other = render_items(range(6), config, seed=6)
    assert not torch.equal(other.images, whole.images)


def _marker_check(domain: str, poses: PoseSet | None, n: int = 16, size: int = 40):
    """Paint each joint's own parts magenta, all else black; look at the joint's nearest pixel."""
    config = RenderConfig(size=size, domain=domain, noise=0.0, blur=0.0)
    indices = np.arange(n)
    scenes, annotated = sample_items(indices, config, 11, poses)
    batch = render_items(indices, config, 11, poses)
    marker = np.array([1.0, 0.0, 1.0])
    hits, misses, occluded_hits, n_occluded = 0, 0, 0, 0
    for j in range(14):
        painted = copy.deepcopy(scenes)
        for scene in painted:
            own = np.isin(scene["part"], JOINT_PARTS[j])
            layers = scene["layers"]
            layers["colour"] = np.where(own[:, None], marker, 0.0)
            layers["texture"][:, 0] = 0.0
            layers["shading"][:] = 0.0
            scene["coarse"][:] = 0.0
            scene["fine"][:] = 0.0
            scene["gain"], scene["bias"] = 1.0, 0.0
        images, _ = render_scenes(painted, indices, 11, size)
        for b in range(n):
            if not batch.visible[b, j]:
                continue
            col, row = np.clip(np.round(batch.joints[b, j]).astype(int), 0, size - 1)
            on_marker = images[b, 0, row, col].item() >= 64  # own parts cover ≥ 1/4 of it
            if batch.occluded[b, j]:
                n_occluded += 1
                occluded_hits += on_marker
            else:
                hits += on_marker
                misses += not on_marker
    return hits, misses, occluded_hits, n_occluded


def test_every_visible_joint_is_drawn_where_its_annotation_says():
    hits, misses, occluded_hits, n_occluded = _marker_check("lspet", None)
    assert hits + misses > 150
    assert misses <= 0.02 * (hits + misses)  # only where an occluder's edge passes the joint
    assert n_occluded > 5 and occluded_hits <= 0.25 * n_occluded  # occluded: something else there


def test_visible_means_annotated_and_inside_the_image():
    batch = render_items(range(40), RenderConfig(size=32, domain="lspet"), seed=2)
    inside = ((batch.joints >= -0.5) & (batch.joints <= 31.5)).all(-1)
    np.testing.assert_array_equal(batch.visible, inside)
    assert not (batch.occluded & ~batch.visible).any()


def test_prior_poses_are_upright_people_in_the_person_frame():
    rng = np.random.default_rng(3)
    poses = np.stack(
        [sample_prior_pose(rng, rotation_std_deg=0.0, large_rotation_prob=0.0) for _ in range(300)]
    )
    extent = poses.max(1) - poses.min(1)
    np.testing.assert_allclose(extent.max(-1), 1.0)
    np.testing.assert_allclose((poses.max(1) + poses.min(1)) / 2, 0.0, atol=1e-12)
    mid_hip = poses[:, 2:4].mean(1)
    torso = np.linalg.norm(poses[:, 12] - mid_hip, axis=-1)
    assert (poses[:, 13, 1] < poses[:, 12, 1]).all() and (poses[:, 12, 1] < mid_hip[:, 1]).all()

    def bone(a, b):
        return np.linalg.norm(poses[:, a] - poses[:, b], axis=-1) / torso

    for a, b, lo, hi in ((8, 7, 0.2, 0.9), (7, 6, 0.2, 0.8), (2, 1, 0.3, 1.2), (1, 0, 0.3, 1.1)):
        ratio = bone(a, b)
        assert lo < ratio.min() and ratio.max() < hi, (a, b, ratio.min(), ratio.max())
    assert np.mean(poses[:, [0, 5], 1].max(1) > mid_hip[:, 1]) > 0.95  # feet below the hips
    facing = np.sign(poses[:, 9, 0] - poses[:, 8, 0])  # front and back views both occur
    assert 0.2 < np.mean(facing > 0) < 0.9


def _lsp_array(rng: np.random.Generator, n: int) -> np.ndarray:
    """An LSP-format joints array 3×14×n: prior poses in a 200-px frame, flag = occluded."""
    poses = np.stack([sample_prior_pose(rng) for _ in range(n)]) * 150 + 100
    flags = rng.random((n, 14)) < 0.1
    return np.concatenate([poses, flags[..., None]], -1).transpose(2, 1, 0)


def test_lsp_format_poses_round_trip_through_rendering():
    path = DATA / "lsp" / "joints.mat"
    if path.is_file():
        from scipy.io import loadmat

        array = loadmat(path)["joints"][:, :, :30]
    else:
        array = _lsp_array(np.random.default_rng(0), 30)
    poses = poses_from_joints_mat(array)
    assert poses.annotated.all()
    data = SyntheticPoseDataset(None, RenderConfig(size=64, domain="lsp"), seed=1, poses=poses)
    assert len(data) == 30
    original = array[:2].transpose(2, 1, 0)
    for k in range(30):  # rendered joints = original joints up to scale, rotation and shift
        _, _, disparity = procrustes(original[k], data.joints[k].astype(np.float64))
        assert disparity < 1e-3


def test_lspet_format_missing_joints_are_imputed_and_not_visible():
    rng = np.random.default_rng(1)
    lsp = _lsp_array(rng, 12)
    array = np.concatenate([lsp[:2], np.ones((1, 14, 12))]).transpose(1, 0, 2)  # 14×3×N
    missing = rng.random((12, 14)) < 0.2
    missing[0] = True  # nothing annotated at all
    missing[1, :13] = True  # a single joint
    array[:, :2][np.broadcast_to(missing.T[:, None], (14, 2, 12))] = -1.0
    array[:, 2][missing.T] = 0.0
    poses = poses_from_joints_mat(array)
    np.testing.assert_array_equal(poses.annotated, ~missing)
    assert np.isfinite(poses.poses).all() and np.abs(poses.poses).max() <= 0.5 + 1e-9
    batch = render_items(range(12), RenderConfig(size=32), seed=0, poses=poses)
    assert not batch.visible[missing].any()
    same = poses_from_array(lsp[:2].transpose(2, 1, 0), ~missing)
    np.testing.assert_allclose(same.poses[~missing], poses.poses[~missing])


def test_mpii_poses_map_to_lsp_order():
    rng = np.random.default_rng(2)
    mpii = rng.uniform(0, 100, size=(3, 16, 2))
    poses = poses_from_array(mpii, skeleton=MPII)
    lsp_order = [MPII.index(name.replace("neck", "upper_neck")) for name in LSP.joints]
    direct = poses_from_array(mpii[:, lsp_order])
    np.testing.assert_allclose(poses.poses, direct.poses)


def test_domains_differ():
    stats = {}
    for domain in ("clean", "lsp", "lspet"):
        images = render_items(range(12), RenderConfig(size=32, domain=domain), seed=4).images
        x = images.float() / 255
        stats[domain] = (
            (x[..., 1:, :] - x[..., :-1, :]).abs().mean().item(),  # edges + noise
            x.mean((0, 2, 3)),  # mean colour
        )
    assert stats["clean"][0] < stats["lsp"][0]
    assert not torch.allclose(stats["lsp"][1], stats["lspet"][1], atol=0.02)
    style = RenderConfig(domain="lspet", occlusion_prob=0.0).style()
    assert style.occlusion_prob == 0.0 and style.n_distractors == 3


@pytest.mark.parametrize("size", [17, 32, 100])
def test_any_resolution(size):
    batch = render_items(range(3), RenderConfig(size=size), seed=9)
    reference = render_items(range(3), RenderConfig(size=32), seed=9)
    assert batch.images.shape == (3, 3, size, size) and batch.images.dtype == torch.uint8
    np.testing.assert_allclose(
        (batch.joints + 0.5) / size, (reference.joints + 0.5) / 32, atol=1e-5
    )


def test_dataset_item_contract():
    data = SyntheticPoseDataset(5, RenderConfig(size=32, domain="clean"), seed=0)
    item = data[4]
    assert set(item) == {"image", "joints", "visible", "index", "head_size"}
    assert item["image"].dtype == torch.float32 and item["image"].shape == (3, 32, 32)
    assert 0.0 <= item["image"].min() and item["image"].max() <= 1.0
    assert item["joints"].shape == (14, 2) and item["visible"].dtype == torch.bool
    assert item["index"].item() == 4 and item["index"].dtype == torch.int64
    assert torch.isnan(item["head_size"])
    assert data.skeleton is LSP and data.input_size == 32
    assert data.joints.shape == (5, 14, 2) and data.visible.shape == (5, 14)
    np.testing.assert_array_equal(item["joints"].numpy(), data.joints[4])
    annotations = data.annotations()
    np.testing.assert_array_equal(annotations.visible, data.visible)
    with pytest.raises(IndexError, match="out of range"):
        data[5]


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="size"):
        RenderConfig(size=4)
    with pytest.raises(ValueError, match="known domains: clean, lsp, lspet"):
        RenderConfig(domain="mars")
    with pytest.raises(ValueError, match="occlusion_prob"):
        RenderConfig(occlusion_prob=1.5)
    with pytest.raises(ValueError, match="n_distractors"):
        RenderConfig(n_distractors=-1)
    with pytest.raises(ValueError, match="seed"):
        SyntheticPoseDataset(2, seed=-1)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        SyntheticPoseDataset(0)
    with pytest.raises(ValueError, match="give n, or poses"):
        SyntheticPoseDataset()
    with pytest.raises(TypeError, match="RenderConfig"):
        SyntheticPoseDataset(2, config={"size": 32})
    with pytest.raises(ValueError, match=r"shape \(N, 14, 2\)"):
        poses_from_array(np.zeros((3, 13, 2)))
    with pytest.raises(ValueError, match=r"visible must have shape \(3, 14\)"):
        poses_from_array(np.zeros((3, 14, 2)), np.ones((3, 13), bool))
    with pytest.raises(ValueError, match="3×14×N or LSPET's 14×3×N"):
        poses_from_joints_mat(np.zeros((2, 14, 5)))
    with pytest.raises(ValueError, match="NaN"):
        PoseSet(np.full((1, 14, 2), np.nan), np.ones((1, 14), bool))
