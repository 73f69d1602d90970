"""The crop-and-augment transform: pixels land where the joints say, flips swap sides."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from eglpp.pose.datasets.preprocess import fit_aspect
from eglpp.pose.datasets.transforms import (
    AugmentSample,
    CropAugment,
    apply_affine,
    crop_affine,
    crop_and_augment,
    crop_width,
    person_box,
    sample_augmentation,
)
from eglpp.pose.skeleton import LSP


def blob_image(width: int, height: int, point: tuple[float, float], sigma: float) -> Image.Image:
    """Black RGB image with a Gaussian blob (peak 255) centred at ``point`` (pixel centres)."""
    yy, xx = np.mgrid[:height, :width]
    blob = np.exp(-((xx - point[0]) ** 2 + (yy - point[1]) ** 2) / (2 * sigma**2))
    return Image.fromarray(np.repeat((255 * blob)[:, :, None], 3, axis=2).astype(np.uint8))


def centroid(channel: np.ndarray) -> np.ndarray:
    """Intensity-weighted (x, y) centroid of an (H, W) image."""
    H, W = channel.shape
    yy, xx = np.mgrid[:H, :W]
    w = channel / channel.sum()
    return np.array([(w * xx).sum(), (w * yy).sum()])


@pytest.mark.parametrize(
    ("size", "center", "scale", "sample", "tolerance"),
    [
        ((80, 60), (40.0, 30.0), 64 / 200, AugmentSample(), 0.05),
        ((80, 60), (37.3, 28.9), 50 / 200, AugmentSample(scale=1.2, rotation=25.0), 0.05),
        ((80, 60), (41.0, 33.0), 70 / 200, AugmentSample(rotation=-40.0, flip=True), 0.05),
        # crop shrinks the photo ~6×: goes through the box-filter reduction first
        ((600, 450), (300.0, 220.0), 400 / 200, AugmentSample(rotation=10.0), 0.05),
    ],
)
def test_blob_lands_at_the_transformed_joint(size, center, scale, sample, tolerance):
    joint = (33.0, 27.0) if size[0] < 100 else (250.0, 260.0)
    sigma = 3.0 if size[0] < 100 else 18.0
    image = blob_image(*size, joint, sigma)
    joints = np.tile(np.array(joint), (14, 1))
    result = crop_and_augment(
        image,
        joints,
        np.ones(14, bool),
        input_size=64,
        flip_permutation=LSP.flip_permutation(),
        center=np.array(center),
        scale=scale,
        sample=sample,
    )
    assert result.image.shape == (3, 64, 64) and result.image.dtype == np.float32
    assert 0.0 <= result.image.min() and result.image.max() <= 1.0
    expected = apply_affine(result.affine, joint)
    np.testing.assert_allclose(result.joints[0], expected, atol=1e-4)
    np.testing.assert_allclose(centroid(result.image[0]), expected, atol=tolerance)


def test_identity_crop_returns_the_image():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    joints = rng.uniform(0, 31, size=(14, 2))
    result = crop_and_augment(
        Image.fromarray(pixels),
        joints,
        np.ones(14, bool),
        input_size=32,
        flip_permutation=None,
        center=np.array([15.5, 15.5]),
        scale=32 / 200,
    )
    np.testing.assert_allclose(result.image, pixels.transpose(2, 0, 1) / 255, atol=1e-6)
    np.testing.assert_allclose(result.joints, joints, atol=1e-4)


def test_flip_mirrors_pixels_and_swaps_left_right():
    rng = np.random.default_rng(1)
    image = Image.fromarray(rng.integers(0, 256, size=(50, 70, 3), dtype=np.uint8))
    joints = rng.uniform(10, 40, size=(14, 2))
    visible = rng.random(14) > 0.3
    common = dict(
        input_size=48,
        flip_permutation=LSP.flip_permutation(),
        center=np.array([30.0, 25.0]),
        scale=40 / 200,
    )
    plain = crop_and_augment(image, joints, visible, **common)
    flipped = crop_and_augment(image, joints, visible, sample=AugmentSample(flip=True), **common)
    np.testing.assert_allclose(flipped.image, plain.image[:, :, ::-1], atol=1.01 / 255)
    right_ankle, left_ankle = LSP.index("right_ankle"), LSP.index("left_ankle")
    # the flipped right ankle is the mirror image of the original left ankle
    np.testing.assert_allclose(flipped.joints[right_ankle, 0], 47 - plain.joints[left_ankle, 0])
    np.testing.assert_allclose(flipped.joints[right_ankle, 1], plain.joints[left_ankle, 1])
    assert flipped.visible[right_ankle] == plain.visible[left_ankle]
    perm = LSP.flip_permutation()
    np.testing.assert_allclose(flipped.joints[:, 0], 47 - plain.joints[perm, 0], atol=1e-4)
    np.testing.assert_array_equal(flipped.visible, plain.visible[perm])
    neck = LSP.index("neck")  # unpaired joints stay in place
    np.testing.assert_allclose(flipped.joints[neck, 0], 47 - plain.joints[neck, 0], atol=1e-4)
    with pytest.raises(ValueError, match="permutation"):
        crop_and_augment(image, joints, visible, **{**common, "flip_permutation": [0, 1]},
                         sample=AugmentSample(flip=True))  # fmt: skip


def test_outside_joints_become_invisible_and_head_size():
    image = Image.new("RGB", (100, 100))
    joints = np.array([[50.0, 50.0], [99.0, 50.0], [10.0, 10.0]] + [[50.0, 50.0]] * 11)
    head_box = np.array([40.0, 40.0, 52.0, 49.0])  # diagonal 15
    result = crop_and_augment(
        image,
        joints,
        np.array([True, True, False] + [True] * 11),
        input_size=64,
        flip_permutation=None,
        center=np.array([50.0, 50.0]),
        scale=80 / 200,
        head_box=head_box,
        sample=AugmentSample(rotation=30.0),
    )
    assert result.visible[0] and not result.visible[1] and not result.visible[2]
    corners = apply_affine(result.affine, head_box.reshape(2, 2))
    assert result.head_size == pytest.approx(0.6 * np.linalg.norm(corners[1] - corners[0]))
    assert result.head_size == pytest.approx(0.6 * 15 * 64 / 80)
    no_box = crop_and_augment(image, joints, np.ones(14, bool), input_size=8, flip_permutation=None)
    assert np.isnan(no_box.head_size)


def test_person_box_fallbacks():
    joints = np.array([[10.0, 20.0], [30.0, 60.0], [500.0, 500.0]])
    visible = np.array([True, True, False])
    c, extent = person_box(joints, visible, (200, 100), bbox_scale=1.25)
    np.testing.assert_allclose(c, [20.0, 40.0])
    np.testing.assert_allclose(extent, [25.0, 50.0])  # the joints' box (20 × 40) · 1.25
    assert crop_width(extent, 64) == pytest.approx(50.0)  # square input: the longer side
    c, extent = person_box(joints, visible, (200, 100), center=np.array([1.0, 2.0]), scale=0.5)
    np.testing.assert_allclose(c, [1.0, 2.0])
    np.testing.assert_allclose(extent, [100.0, 100.0])  # MPII's scalar scale: a square
    c, extent = person_box(
        joints, visible, (200, 100), center=np.array([1.0, 2.0]), scale=np.array([0.5, 0.25])
    )
    np.testing.assert_allclose(extent, [100.0, 50.0])  # a COCO box's (w, h)
    c, extent = person_box(joints, visible, (200, 100), center=np.full(2, np.nan), scale=np.nan)
    np.testing.assert_allclose(extent, [25.0, 50.0])  # NaN centre/scale -> joints' box
    c, extent = person_box(joints, np.array([True, False, False]), (200, 100))
    np.testing.assert_allclose(c, [99.5, 49.5])  # whole image
    np.testing.assert_allclose(extent, [200.0, 100.0])


def test_crop_affine_maps_box_corners():
    A = crop_affine(np.array([10.0, 20.0]), 40.0, 64)
    corners = apply_affine(A, [[-10.0, 0.0], [30.0, 40.0]])  # the box's outer corners
    np.testing.assert_allclose(corners, [[-0.5, -0.5], [63.5, 63.5]])
    np.testing.assert_allclose(apply_affine(A, [[10.0, 20.0]]), [[31.5, 31.5]])


def test_rectangular_crop_is_mmpose_top_down():
    """A tall person box 50 × 150 for a 256 × 192 (H × W) input: grown to w/h = 0.75, i.e.
    112.5 × 150, then · 1.25 = 140.625 × 187.5 (mmpose's bbox_xywh2cs + fix_aspect_ratio),
    mapped isotropically onto the input: its corners land on the input's corners."""
    box_w, box_h = fit_aspect(np.array([50.0, 150.0]) * 1.25, (256, 192))
    assert (box_w, box_h) == pytest.approx((140.625, 187.5))
    assert fit_aspect(np.array([300.0, 100.0]), (256, 192)) == pytest.approx((300.0, 400.0))
    assert fit_aspect(np.array([100.0, 100.0]), (256, 192)) == pytest.approx((100.0, 400 / 3))
    rng = np.random.default_rng(0)
    sizes = rng.integers(16, 300, (50, 2))
    for extent, hw in zip(rng.uniform(1, 100, (50, 2)), sizes, strict=True):
        w, h = fit_aspect(extent, tuple(hw))  # the smallest box ⊇ extent with w / h = W / H
        assert w * hw[0] == pytest.approx(h * hw[1]) and w >= extent[0] and h >= extent[1]
        assert w == pytest.approx(extent[0]) or h == pytest.approx(extent[1])
    c = np.array([100.0, 80.0])
    A = crop_affine(c, box_w, (256, 192))
    corners = apply_affine(A, [c - [box_w / 2, box_h / 2], c + [box_w / 2, box_h / 2]])
    np.testing.assert_allclose(corners, [[-0.5, -0.5], [191.5, 255.5]])  # (x, y): W then H
    image = blob_image(220, 160, (120.0, 30.0), 3.0)  # a blob where no joint is
    joints = np.array([[75.0, 5.0], [125.0, 155.0]])  # the person box's corners (as joints)
    result = crop_and_augment(image, joints, np.ones(2, bool), input_size=(256, 192),
                              flip_permutation=None)  # fmt: skip
    assert result.image.shape == (3, 256, 192)
    k = 256 / 187.5  # input px per original px
    expected = k * (joints - [100.0, 80.0]) + [95.5, 127.5]  # centre -> ((W-1)/2, (H-1)/2)
    np.testing.assert_allclose(result.joints, expected, rtol=1e-5)
    row, col = np.unravel_index(result.image[0].argmax(), result.image[0].shape)
    blob = k * (np.array([120.0, 30.0]) - [100.0, 80.0]) + [95.5, 127.5]
    assert abs(col - blob[0]) <= 1 and abs(row - blob[1]) <= 1  # pixels follow the joints
    scale = k
    assert (result.joints[1, 1] - result.joints[0, 1]) == pytest.approx(150 * scale, rel=1e-6)
    assert (result.joints[1, 0] - result.joints[0, 0]) == pytest.approx(50 * scale, rel=1e-6)


def test_sample_augmentation_ranges_and_determinism():
    config = CropAugment()
    samples = [sample_augmentation(config, np.random.default_rng([7, i])) for i in range(400)]
    scales = np.array([s.scale for s in samples])
    rotations = np.array([s.rotation for s in samples])
    assert scales.min() >= 0.75 and scales.max() <= 1.25 and scales.std() > 0.1
    assert np.abs(rotations).max() <= 60.0
    assert 0.5 < np.mean(rotations == 0) < 0.7  # rotated with probability 0.4
    assert 0.4 < np.mean([s.flip for s in samples]) < 0.6
    again = sample_augmentation(config, np.random.default_rng([7, 3]))
    assert again == samples[3]
    off = CropAugment(0.0, 0.0, 0.0, 0.0, 0.0)
    assert sample_augmentation(off, np.random.default_rng(0)) == AugmentSample()
    with pytest.raises(ValueError, match="flip_prob"):
        CropAugment(flip_prob=1.5)
