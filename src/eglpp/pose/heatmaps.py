"""Gaussian heatmap targets, their decoding, flips, and the heatmap training loss.

Coordinates follow the pixel-centre convention: pixel column i covers [i - 0.5, i + 0.5], so a
joint at x = 3.0 sits at the centre of column 3. Joints are (x, y) = (column, row). With a stride
s between input and heatmap (4 for the hourglass),

.. math:: x_h = (x_{in} + 0.5) / s - 0.5, \\qquad x_{in} = (x_h + 0.5)\\, s - 0.5.

Target width. Newell et al. (ECCV 2016) use a 2-D Gaussian of standard deviation 1 px on the
64×64 heatmap; the code released with the EGL++ paper uses 1.75 px. ``sigma`` is an argument
everywhere (in heatmap pixels); ``TrainConfig.sigma`` sets it for training.

The loss (the training loss ℓ of Eq. 12) is the mean squared error over all stacks, joints and
pixels; a joint with weight 0 (not annotated) contributes nothing but still counts in the mean,
so the loss of a batch is exactly the mean of the per-example losses.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "input_to_heatmap",
    "heatmap_to_input",
    "gaussian_heatmaps",
    "decode_heatmaps",
    "flip_heatmaps",
    "flip_joints",
    "heatmap_loss",
    "heatmap_loss_per_example",
    "target_heatmaps",
]


def input_to_heatmap(xy: Tensor | np.ndarray, stride: int) -> Tensor | np.ndarray:
    """Input-image pixel coordinates → heatmap pixel coordinates: ``(xy + 0.5) / stride - 0.5``."""
    return (xy + 0.5) / stride - 0.5


def heatmap_to_input(xy: Tensor | np.ndarray, stride: int) -> Tensor | np.ndarray:
    """Heatmap pixel coordinates → input-image pixel coordinates: ``(xy + 0.5) * stride - 0.5``."""
    return (xy + 0.5) * stride - 0.5


def gaussian_heatmaps(
    joints: Tensor, visible: Tensor, size: tuple[int, int], sigma: float
) -> Tensor:
    """Unnormalised Gaussian targets, peak 1 at each joint's (subpixel) position.

    .. math:: T_j(u, v) = \\exp\\left(-\\frac{(u - x_j)^2 + (v - y_j)^2}{2\\sigma^2}\\right)

    Parameters
    ----------
    joints : Tensor (B, J, 2)
        Joint positions (x, y) in heatmap pixels.
    visible : Tensor (B, J) bool
        Joints whose target is drawn; the others get an all-zero map.
    size : (H, W)
        Heatmap height and width.
    sigma : float
        Standard deviation in heatmap pixels (Newell: 1 at 64×64; the paper's code: 1.75).

    Returns
    -------
    Tensor (B, J, H, W), the dtype of ``joints`` (float32 for integer input).
    """
    if joints.dim() != 3 or joints.shape[-1] != 2:
        raise ValueError(f"joints must have shape (B, J, 2), got {tuple(joints.shape)}")
    if visible.shape != joints.shape[:2]:
        raise ValueError(
            f"visible must have shape {tuple(joints.shape[:2])} (B, J), got {tuple(visible.shape)}"
        )
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    H, W = size
    joints = joints if joints.is_floating_point() else joints.float()
    u = torch.arange(W, dtype=joints.dtype, device=joints.device)  # (W,)
    v = torch.arange(H, dtype=joints.dtype, device=joints.device)  # (H,)
    gx = torch.exp(-((u - joints[..., 0:1]) ** 2) / (2 * sigma**2))  # (B, J, W)
    gy = torch.exp(-((v - joints[..., 1:2]) ** 2) / (2 * sigma**2))  # (B, J, H)
    maps = gy[..., :, None] * gx[..., None, :]  # (B, J, H, W), separable
    return maps * visible[..., None, None].to(maps.dtype)


def decode_heatmaps(heatmaps: Tensor) -> tuple[Tensor, Tensor]:
    """Argmax, then a quarter-pixel shift toward the larger neighbour on each axis (Newell).

    For a Gaussian centred anywhere in the argmax pixel, the decoded coordinate is within
    0.25 px of the centre on each axis. Border pixels (no neighbour on one side) are not shifted
    on that axis; ties are not shifted.

    Parameters
    ----------
    heatmaps : Tensor (B, J, H, W)

    Returns
    -------
    coords : Tensor (B, J, 2), float32
        (x, y) in heatmap pixels.
    maxvals : Tensor (B, J)
        The heatmap value at the argmax.
    """
    if heatmaps.dim() != 4:
        raise ValueError(f"heatmaps must have shape (B, J, H, W), got {tuple(heatmaps.shape)}")
    B, J, H, W = heatmaps.shape
    flat = heatmaps.reshape(B, J, H * W)
    maxvals, idx = flat.max(dim=-1)  # (B, J)
    x, y = idx % W, idx // W  # (B, J) each

    def at(xx: Tensor, yy: Tensor) -> Tensor:  # value at clamped (x, y), (B, J)
        i = yy.clamp(0, H - 1) * W + xx.clamp(0, W - 1)
        return flat.gather(-1, i[..., None])[..., 0]

    dx = torch.sign(at(x + 1, y) - at(x - 1, y)) * ((x > 0) & (x < W - 1))
    dy = torch.sign(at(x, y + 1) - at(x, y - 1)) * ((y > 0) & (y < H - 1))
    coords = torch.stack([x + 0.25 * dx, y + 0.25 * dy], dim=-1).float()  # (B, J, 2)
    return coords, maxvals


def flip_heatmaps(heatmaps: Tensor, flip_permutation: Sequence[int]) -> Tensor:
    """Heatmaps of the horizontally mirrored image: swap left/right channels, mirror columns.

    With the pixel-centre convention and an input width equal to stride × heatmap width, the
    mirror of heatmap column u is column W - 1 - u exactly, so flipping twice is the identity.

    Parameters
    ----------
    heatmaps : Tensor (..., J, H, W)
    flip_permutation : sequence of J ints
        ``Skeleton.flip_permutation()``: channel i of the result is channel perm[i] of the input.
    """
    J = heatmaps.shape[-3]
    perm = list(flip_permutation)
    if sorted(perm) != list(range(J)):
        raise ValueError(f"flip_permutation must be a permutation of range({J}), got {perm}")
    return heatmaps[..., perm, :, :].flip(-1)


def flip_joints(joints: Tensor, width: int, flip_permutation: Sequence[int]) -> Tensor:
    """Joints (..., J, 2) of the mirrored image of ``width`` pixels: x → width - 1 - x, swapped."""
    flipped = joints[..., list(flip_permutation), :].clone()
    flipped[..., 0] = width - 1 - flipped[..., 0]
    return flipped


def heatmap_loss_per_example(pred: Tensor, target: Tensor, weight: Tensor) -> Tensor:
    """Per-example training loss: weighted mean squared error over stacks, joints and pixels.

    .. math:: \\ell_b = \\frac{1}{S J H W} \\sum_{s, j, u, v} w_{bj}\\,
        (P_{bsjuv} - T_{bjuv})^2

    Parameters
    ----------
    pred : Tensor (B, S, J, H, W)
        Every stack's heatmaps.
    target : Tensor (B, J, H, W)
    weight : Tensor (B, J)
        1 for annotated joints, 0 for missing ones (bool or float).

    Returns
    -------
    Tensor (B,), computed in at least float32.
    """
    if pred.dim() != 5:
        raise ValueError(f"pred must have shape (B, S, J, H, W), got {tuple(pred.shape)}")
    B, S, J, H, W = pred.shape
    if target.shape != (B, J, H, W):
        raise ValueError(f"target must have shape {(B, J, H, W)}, got {tuple(target.shape)}")
    if weight.shape != (B, J):
        raise ValueError(f"weight must have shape {(B, J)}, got {tuple(weight.shape)}")
    dtype = torch.promote_types(pred.dtype, torch.float32)
    sq = (pred.to(dtype) - target.to(dtype)[:, None]) ** 2  # (B, S, J, H, W)
    per_joint = sq.mean(dim=(1, 3, 4))  # (B, J), mean over stacks and pixels
    return (per_joint * weight.to(dtype)).mean(dim=1)  # (B,)


def heatmap_loss(pred: Tensor, target: Tensor, weight: Tensor) -> Tensor:
    """The training loss: the mean over the batch of :func:`heatmap_loss_per_example`; also the
    ``loss_fn`` that :mod:`eglpp.gradnorm` differentiates for the hourglass (one example)."""
    return heatmap_loss_per_example(pred, target, weight).mean()


def target_heatmaps(
    joints: Tensor, visible: Tensor, input_size: int | tuple[int, int], sigma: float, stride: int
) -> Tensor:
    """Gaussian targets (N, J, h, w) of joints (N, J, 2) given in input pixels of an input S
    (square) or (H, W): h = H / stride, w = W / stride."""
    H, W = (input_size, input_size) if isinstance(input_size, int) else input_size
    size = (H // stride, W // stride)
    return gaussian_heatmaps(input_to_heatmap(joints, stride), visible, size, sigma)
