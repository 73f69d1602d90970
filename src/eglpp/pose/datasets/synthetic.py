"""Rendered people: the built-in default pose data, deterministic from a seed, at any resolution.

Item i of a rendering is drawn from its own generator ``numpy.random.default_rng([seed, i])``
(the pose, when no pose array is given, then the scene) and rendered in batches in torch, so an
image depends only on (seed, i, config) and never on which items share its batch. Poses come from
the kinematic prior (:func:`~eglpp.pose.datasets.kinematics.sample_prior_pose`) or from a pose
array (:func:`~eglpp.pose.datasets.kinematics.poses_from_array`, e.g. LSP's ``joints.mat``);
appearance comes from a domain (:func:`~eglpp.pose.datasets.scene.domain_style`), so that a
shift like LSP → LSPET is simulated by rendering the labelled set in ``"lsp"`` and the pool in
``"lspet"``. Use different seeds for different splits: the same seed renders the same images.

>>> data = SyntheticPoseDataset(8, RenderConfig(size=32, domain="lsp"), seed=0)
>>> item = data[3]
>>> item["image"].shape, item["joints"].shape, data.visible.shape
(torch.Size([3, 32, 32]), torch.Size([14, 2]), (8, 14))
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import Tensor
from torch.utils.data import Dataset

from eglpp.pose.datasets.base import PoseAnnotations
from eglpp.pose.datasets.kinematics import PoseSet, sample_prior_pose
from eglpp.pose.datasets.render import (
    Layers,
    composite,
    covering_layer,
    gaussian_blur,
    smooth_noise,
)
from eglpp.pose.datasets.scene import JOINT_PARTS, DomainStyle, domain_style, sample_scene
from eglpp.pose.skeleton import LSP

__all__ = [
    "RenderConfig",
    "RenderedBatch",
    "SyntheticPoseDataset",
    "annotate",
    "render_items",
    "render_scenes",
    "sample_items",
]


@dataclass(frozen=True)
class RenderConfig:
    """What to render. Fields left at None take the domain's value (see `domain_style`)."""

    size: int = 64  # image side in pixels
    domain: str = "lsp"  # "clean" | "lsp" | "lspet"
    occlusion_prob: float | None = None  # probability of an occluding object
    n_distractors: int | None = None  # limbs of other people behind the person
    clutter: int | None = None  # background shapes
    noise: float | None = None  # pixel noise σ (intensity in [0, 1])
    blur: float | None = None  # blur σ in pixels of a 64-px image

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or self.size < 8:
            raise ValueError(f"RenderConfig.size must be an integer ≥ 8, got {self.size!r}")
        domain_style(self.domain)  # raises for an unknown domain
        for name in ("occlusion_prob", "noise", "blur"):
            value = getattr(self, name)
            if value is not None and not (0.0 <= value <= (1.0 if name != "blur" else 16.0)):
                raise ValueError(f"RenderConfig.{name} out of range: {value!r}")
        for name in ("n_distractors", "clutter"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or not 0 <= value <= 64):
                raise ValueError(
                    f"RenderConfig.{name} must be an integer in [0, 64], got {value!r}"
                )

    def style(self) -> DomainStyle:
        """The domain's style with this config's overrides applied."""
        overrides = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("size", "domain") and getattr(self, f.name) is not None
        }
        return dataclasses.replace(domain_style(self.domain), **overrides)


class RenderedBatch(NamedTuple):
    images: Tensor  # (B, 3, S, S) uint8
    joints: np.ndarray  # (B, 14, 2) float32 input pixels
    visible: np.ndarray  # (B, 14) bool: annotated and inside the image
    occluded: np.ndarray  # (B, 14) bool: visible but covered by an object or the body
    labels: Tensor | None  # (B, S, S) topmost layer index per pixel (−1: background)


def _check_seed(seed: int) -> None:
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")


def sample_items(
    indices: ArrayLike, config: RenderConfig, seed: int, poses: PoseSet | None = None
) -> tuple[list[dict], np.ndarray]:
    """Each item's scene (see `sample_scene`) and annotated-joint mask (B, 14), from its own rng.

    With `poses`, item i shows pose ``i % len(poses)``; otherwise a pose from the prior.
    """
    _check_seed(seed)
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    if (indices < 0).any():
        raise ValueError("indices must be non-negative")
    if poses is not None and len(poses) == 0:
        raise ValueError("poses is empty: nothing to render")
    style = config.style()
    scenes, annotated = [], []
    for i in indices.tolist():
        rng = np.random.default_rng([seed, i])
        if poses is None:
            pose = sample_prior_pose(
                rng,
                rotation_std_deg=style.prior_rotation_std_deg,
                large_rotation_prob=style.prior_large_rotation_prob,
            )
            annotated.append(np.ones(14, dtype=bool))
        else:
            pose = poses.poses[i % len(poses)]
            annotated.append(np.asarray(poses.annotated[i % len(poses)], dtype=bool))
        scenes.append(sample_scene(rng, pose, style))
    return scenes, np.stack(annotated).reshape(-1, 14)


def annotate(
    scenes: list[dict], annotated: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Joints in input pixels (B, 14, 2), `visible` (annotated and inside the image) and
    `occluded` (visible, but the topmost layer at the joint is not one of the joint's parts)."""
    joints = np.stack([s["joints"] for s in scenes]).reshape(-1, 14, 2) * size - 0.5
    visible = annotated & ((joints >= -0.5) & (joints <= size - 0.5)).all(-1)
    occluded = np.zeros_like(visible)
    for b, scene in enumerate(scenes):
        top = covering_layer(scene["joints"], scene["layers"])
        part = np.where(top >= 0, scene["part"][top], -2)
        occluded[b] = [part[j] not in JOINT_PARTS[j] for j in range(14)]
    return joints.astype(np.float32), visible, occluded & visible


def render_items(
    indices: ArrayLike,
    config: RenderConfig,
    seed: int,
    poses: PoseSet | None = None,
    *,
    device: str | torch.device = "cpu",
    return_labels: bool = False,
) -> RenderedBatch:
    """Render items `indices` of the rendering (config, seed, poses) as one batch."""
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    scenes, annotated = sample_items(indices, config, seed, poses)
    joints, visible, occluded = annotate(scenes, annotated, config.size)
    images, labels = render_scenes(
        scenes, indices, seed, config.size, device=device, return_labels=return_labels
    )
    return RenderedBatch(images, joints, visible, occluded, labels)


def render_scenes(
    scenes: list[dict],
    indices: ArrayLike,
    seed: int,
    size: int,
    *,
    device: str | torch.device = "cpu",
    return_labels: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """Rasterise scenes at `size` px: uint8 images (B, 3, S, S) and optional layer labels.

    Pixel noise comes from ``default_rng([seed, index, 1])`` of each item.
    """
    S, device = size, torch.device(device)

    def stack(name, dtype=torch.float32, key="layers"):
        values = [s[key][name] if key else s[name] for s in scenes]
        return torch.as_tensor(np.stack(values), dtype=dtype, device=device)

    texture = stack("texture")
    texture = torch.cat([texture[..., :1], texture[..., 1:2] / S, texture[..., 2:]], -1)
    layers = Layers(
        stack("start") * S - 0.5,  # normalised units → pixel centres
        stack("end") * S - 0.5,
        stack("radius") * S,
        stack("box", torch.bool),
        stack("colour"),
        stack("opacity"),
        texture,
        stack("shading"),
    )
    B = len(scenes)
    coarse, fine = stack("coarse", key=None), stack("fine", key=None)
    background = (smooth_noise(coarse, S) + smooth_noise(fine, S)).clamp(0, 1)
    images, labels = composite(layers, background, return_labels=return_labels)
    images = gaussian_blur(images, stack("blur", key=None) * S)
    noise = np.stack(
        [
            np.random.default_rng([seed, int(i), 1]).standard_normal((3, S, S), dtype=np.float32)
            for i in np.asarray(indices).reshape(-1)
        ]
    )
    gain, bias = stack("gain", key=None).view(B, 1, 1, 1), stack("bias", key=None).view(B, 1, 1, 1)
    images = (
        images * gain
        + bias
        + torch.as_tensor(noise, device=device) * stack("noise", key=None).view(B, 1, 1, 1)
    )
    return (images.clamp(0, 1) * 255).round().to(torch.uint8), labels


class SyntheticPoseDataset(Dataset):
    """`n` rendered people, materialised at construction as uint8 images (dataset contract).

    Parameters
    ----------
    n : int, optional
        Number of items; default ``len(poses)`` (required without poses).
    config : RenderConfig
    seed : int
        Item i depends only on (seed, i, config, poses); use different seeds for different splits.
    poses : PoseSet, optional
        Poses to render (item i shows pose ``i % len(poses)``); default: the kinematic prior.
    device : str or torch.device
        Where to render (images are stored on the CPU).
    chunk_size : int
        Images rendered per batch.

    Attributes
    ----------
    images : Tensor, (N, 3, S, S) uint8
    joints : ndarray, (N, 14, 2) float32, input pixels
    visible : ndarray, (N, 14) bool
    occluded : ndarray, (N, 14) bool
    skeleton, input_size
    """

    def __init__(
        self,
        n: int | None = None,
        config: RenderConfig = RenderConfig(),
        seed: int = 0,
        poses: PoseSet | None = None,
        *,
        device: str | torch.device = "cpu",
        chunk_size: int = 256,
    ) -> None:
        if not isinstance(config, RenderConfig):
            raise TypeError(f"config must be a RenderConfig, got {type(config).__name__}")
        _check_seed(seed)
        if n is None:
            if poses is None:
                raise ValueError("SyntheticPoseDataset: give n, or poses to render one image each")
            n = len(poses)
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"SyntheticPoseDataset: n must be a positive integer, got {n!r}")
        if chunk_size < 1:
            raise ValueError(f"SyntheticPoseDataset: chunk_size must be ≥ 1, got {chunk_size}")
        self.config, self.seed, self.poses = config, int(seed), poses
        self.skeleton, self.input_size = LSP, config.size
        parts = [
            render_items(range(lo, min(lo + chunk_size, n)), config, seed, poses, device=device)
            for lo in range(0, n, chunk_size)
        ]
        self.images = torch.cat([p.images.cpu() for p in parts])
        self.joints = np.concatenate([p.joints for p in parts])
        self.visible = np.concatenate([p.visible for p in parts])
        self.occluded = np.concatenate([p.occluded for p in parts])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} rendered items")
        index = index % len(self)
        return {
            "image": self.images[index].float() / 255.0,
            "joints": torch.from_numpy(self.joints[index]),
            "visible": torch.from_numpy(self.visible[index]),
            "index": torch.tensor(index, dtype=torch.int64),
            "head_size": torch.tensor(float("nan"), dtype=torch.float32),
        }

    def annotations(self) -> PoseAnnotations:
        """The annotations as a :class:`~eglpp.pose.datasets.base.PoseAnnotations`."""

        return PoseAnnotations(
            skeleton=self.skeleton,
            joints=np.where(self.visible[..., None], self.joints, 0.0),
            visible=self.visible,
            occluded=self.occluded,
            source=f"rendered({self.config}, seed={self.seed})",
        )
