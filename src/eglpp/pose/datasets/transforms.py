"""One crop-and-augment transform for training, evaluation and scoring.

A person is cut out of the original image by a box, either from the annotation's centre and
scale (MPII: a square of side 200 · scale px; a COCO box: its width and height · ``bbox_scale``,
``scale`` = (w, h) / 200) or from the bounding box of the visible joints (LSP, LSPET: its sides ·
``bbox_scale``), grown to the aspect ratio W / H of the input (mmpose's top-down convention,
:func:`~eglpp.pose.datasets.preprocess.fit_aspect`); the crop scales it isotropically onto the
H × W input. Training adds a random zoom, an in-plane
rotation, a horizontal flip (left/right joints swapped with ``Skeleton.flip_permutation``) and a
per-channel colour gain; evaluation and scoring use the same code with the identity
:class:`AugmentSample`, so the three paths can never drift apart.

Coordinates follow the pixel-centre convention of the contracts: pixel column ``i`` covers
``[i - 0.5, i + 0.5]``. The crop is an affine map ``u = A @ [x, y, 1]`` from original pixels to
input pixels; the ``H × W`` output covers ``[-0.5, W - 0.5] × [-0.5, H - 0.5]``. Images are
resampled with PIL (bilinear), after an integer box-filter reduction when the crop shrinks the
image by 2× or more.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from eglpp.pose.datasets.preprocess import fit_aspect, input_hw

__all__ = [
    "CropAugment",
    "AugmentSample",
    "CropResult",
    "sample_augmentation",
    "person_box",
    "crop_affine",
    "crop_width",
    "apply_affine",
    "warp_image",
    "crop_and_augment",
]


@dataclass(frozen=True)
class CropAugment:
    """How a person is cropped and, in training, augmented (Newell et al.'s recipe by default)."""

    scale_sigma: float = 0.25  # zoom factor 1 + σ·z, clipped to [1 − σ, 1 + σ]
    rotation_sigma: float = 30.0  # degrees; σ·z clipped to ±2σ
    rotation_prob: float = 0.4  # probability that a sample is rotated at all
    flip_prob: float = 0.5  # probability of a horizontal flip
    color_jitter: float = 0.2  # per-channel gain drawn from U(1 − c, 1 + c)
    bbox_scale: float = 1.25  # box side / longer side of the visible joints' box (no centre/scale)
    head_factor: float = 0.6  # head_size = head_factor · head-box diagonal (PCKh's 0.6)

    def __post_init__(self) -> None:
        for name in ("scale_sigma", "rotation_sigma", "color_jitter"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"CropAugment.{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.scale_sigma < 1:
            raise ValueError(f"CropAugment.scale_sigma must be in [0, 1), got {self.scale_sigma}")
        for name in ("rotation_prob", "flip_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"CropAugment.{name} must be in [0, 1], got {getattr(self, name)}")
        if not self.color_jitter < 1:
            raise ValueError(f"CropAugment.color_jitter must be < 1, got {self.color_jitter}")
        if not self.bbox_scale > 0 or not self.head_factor > 0:
            raise ValueError("CropAugment.bbox_scale and head_factor must be > 0")


@dataclass(frozen=True)
class AugmentSample:
    """One draw of the augmentation; the default is the identity used for evaluation."""

    scale: float = 1.0  # multiplies the box side (> 1: the person appears smaller)
    rotation: float = 0.0  # degrees, positive turns the person counter-clockwise on screen
    flip: bool = False
    gain: tuple[float, float, float] = (1.0, 1.0, 1.0)  # RGB gains


@dataclass(frozen=True)
class CropResult:
    """A transformed example: ``image`` (3, H, W) in [0, 1], joints (J, 2) in input pixels."""

    image: np.ndarray
    joints: np.ndarray
    visible: np.ndarray
    head_size: float  # head_factor · head-box diagonal in input px; NaN without a head box
    affine: np.ndarray  # (2, 3) original px -> input px (before the flip's joint permutation)


def sample_augmentation(config: CropAugment, rng: np.random.Generator) -> AugmentSample:
    """Draw one augmentation; always consumes the same number of variates from ``rng``."""
    z_scale, z_rot = rng.standard_normal(2)
    u_rot, u_flip = rng.random(2)
    gain = rng.uniform(1 - config.color_jitter, 1 + config.color_jitter, size=3)
    s = config.scale_sigma
    scale = float(np.clip(1 + s * z_scale, 1 - s, 1 + s))
    r = config.rotation_sigma
    rotation = float(np.clip(r * z_rot, -2 * r, 2 * r)) if u_rot < config.rotation_prob else 0.0
    return AugmentSample(
        scale=scale,
        rotation=rotation,
        flip=bool(u_flip < config.flip_prob),
        gain=(float(gain[0]), float(gain[1]), float(gain[2])),
    )


def person_box(
    joints: np.ndarray,
    visible: np.ndarray,
    image_size: tuple[int, int],
    *,
    center: np.ndarray | None = None,
    scale: float | np.ndarray | None = None,
    bbox_scale: float = 1.25,
) -> tuple[np.ndarray, np.ndarray]:
    """Centre (2,) and extent (w, h) px of the box around one person, before
    :func:`~eglpp.pose.datasets.preprocess.fit_aspect` grows it to the input's aspect.

    From ``center``/``scale`` where both are finite (extent = 200 · scale: a square for a
    scalar scale, (w, h) for a pair), else from the box of the visible joints (its sides ·
    ``bbox_scale``), else (fewer than two distinct
    visible joints) the whole image. ``image_size`` is (width, height).
    """
    if center is not None and scale is not None:
        center = np.asarray(center, dtype=np.float64)
        s = np.broadcast_to(np.asarray(scale, dtype=np.float64), (2,))
        if np.all(np.isfinite(center)) and np.all(np.isfinite(s)) and np.all(s > 0):
            return center, 200.0 * s
    pts = np.asarray(joints, dtype=np.float64)[np.asarray(visible, dtype=bool)]
    if len(pts) >= 2:
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        extent = float((hi - lo).max())
        if extent >= 1.0:
            return (lo + hi) / 2, bbox_scale * (hi - lo)
    W, H = image_size
    return np.array([(W - 1) / 2, (H - 1) / 2]), np.array([float(W), float(H)])


def crop_affine(
    center: np.ndarray,
    side: float,
    input_size: int | tuple[int, int],
    rotation: float = 0.0,
    flip: bool = False,
) -> np.ndarray:
    """(2, 3) affine map from original pixels to the H × W crop (``input_size`` S or (H, W)).

    The box of width ``side`` (and height ``side`` · H / W) around ``center`` maps onto the
    input: ``u = F R (W / side) (x − c) + ((W − 1) / 2, (H − 1) / 2)`` with R a rotation by
    ``rotation`` degrees (counter-clockwise on screen, y pointing down) and F the mirror
    ``u ↦ W − 1 − u`` if ``flip``.
    """
    if not side > 0:
        raise ValueError(f"crop side must be > 0, got {side}")
    H, W = input_hw(input_size)
    k = W / side
    t = math.radians(rotation)
    cos, sin = math.cos(t), math.sin(t)
    linear = k * np.array([[cos, sin], [-sin, cos]])
    if flip:
        linear[0] *= -1
    offset = np.array([(W - 1) / 2, (H - 1) / 2]) - linear @ np.asarray(center, dtype=np.float64)
    return np.concatenate([linear, offset[:, None]], axis=1)


def crop_width(extent: np.ndarray, input_size: int | tuple[int, int]) -> float:
    """The crop's width (``crop_affine``'s ``side``) for a person box ``extent`` (w, h)."""
    return fit_aspect(extent, input_size)[0]


def apply_affine(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map points (..., 2) through a (2, 3) affine matrix."""
    points = np.asarray(points, dtype=np.float64)
    return points @ affine[:, :2].T + affine[:, 2]


def warp_image(
    image: Image.Image, affine: np.ndarray, input_size: int | tuple[int, int]
) -> np.ndarray:
    """Resample ``image`` through ``affine`` into a (3, H, W) float32 array in [0, 1].

    Outside the image the crop is black. When the crop shrinks the image by an integer factor
    k ≥ 2, the image is first box-reduced by k (reduced pixel j is centred on original
    x = k·j + (k − 1)/2), which avoids aliasing and work on large photos.
    """
    H, W = input_hw(input_size)
    forward = np.vstack([affine, [0.0, 0.0, 1.0]])
    k = int(1.0 / math.sqrt(abs(np.linalg.det(affine[:, :2]))))
    if k >= 2:
        image = image.reduce(k)
        forward = forward @ np.array([[k, 0, (k - 1) / 2], [0, k, (k - 1) / 2], [0, 0, 1.0]])
    backward = np.linalg.inv(forward)
    # PIL samples input point P·(u + 0.5) in a frame whose pixel centres sit at i + 0.5.
    shift_in = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1.0]])
    shift_out = np.array([[1, 0, -0.5], [0, 1, -0.5], [0, 0, 1.0]])
    pil = shift_in @ backward @ shift_out
    out = image.transform(
        (W, H),
        Image.Transform.AFFINE,
        tuple(pil[:2].ravel()),
        resample=Image.Resampling.BILINEAR,
        fillcolor=(0, 0, 0),
    )
    return np.asarray(out, dtype=np.float32).transpose(2, 0, 1) / 255.0


def crop_and_augment(
    image: Image.Image,
    joints: np.ndarray,
    visible: np.ndarray,
    *,
    input_size: int | tuple[int, int],
    flip_permutation: list[int] | None,
    center: np.ndarray | None = None,
    scale: float | None = None,
    head_box: np.ndarray | None = None,
    config: CropAugment = CropAugment(),
    sample: AugmentSample = AugmentSample(),
) -> CropResult:
    """Crop one person from an RGB ``image`` and apply ``sample``'s augmentation.

    Parameters
    ----------
    image : PIL.Image.Image
        RGB image.
    joints, visible : np.ndarray
        (J, 2) original pixels and (J,) bool.
    input_size : int or (int, int)
        S (an S × S crop) or (H, W).
    flip_permutation : list of int or None
        ``Skeleton.flip_permutation()``; required when ``sample.flip``.
    center, scale, head_box : optional
        Person centre (2,) and scale (200-px units), head box (4,) x1, y1, x2, y2.

    Returns
    -------
    CropResult
        Joints that land outside the H × W crop are marked not visible; after a flip,
        joint ``i`` of the result is the mirror of joint ``flip_permutation[i]`` of the input.
    """
    joints = np.asarray(joints, dtype=np.float64)
    visible = np.asarray(visible, dtype=bool)
    J = len(joints)
    box_center, extent = person_box(
        joints, visible, image.size, center=center, scale=scale, bbox_scale=config.bbox_scale
    )
    side = crop_width(extent, input_size) * sample.scale
    affine = crop_affine(box_center, side, input_size, sample.rotation, sample.flip)
    pixels = warp_image(image, affine, input_size)
    if sample.gain != (1.0, 1.0, 1.0):
        pixels = np.clip(pixels * np.asarray(sample.gain, np.float32)[:, None, None], 0.0, 1.0)
    out = apply_affine(affine, joints)
    H, W = input_hw(input_size)
    inside = np.all((out >= -0.5) & (out <= np.array([W, H]) - 0.5), axis=1)
    vis = visible & inside
    if sample.flip:
        if flip_permutation is None or sorted(flip_permutation) != list(range(J)):
            raise ValueError(f"a flip needs a permutation of range({J}), got {flip_permutation}")
        out, vis = out[flip_permutation], vis[flip_permutation]
    head_size = float("nan")
    if head_box is not None and np.all(np.isfinite(head_box)):
        x1, y1, x2, y2 = np.asarray(head_box, dtype=np.float64)
        head_size = config.head_factor * math.hypot(x2 - x1, y2 - y1) * W / side
    return CropResult(
        image=pixels.astype(np.float32, copy=False),
        joints=out.astype(np.float32),
        visible=vis,
        head_size=head_size,
        affine=affine,
    )
