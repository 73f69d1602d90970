"""Batched rasterisation of layered primitives (capsules and boxes) in torch, anti-aliased.

A scene is a stack of layers drawn back to front over a background. Every layer is a segment
(start, end) thickened by a radius: with round caps (a *capsule*: limbs, heads when start == end)
or flat ends (a *box*: stripes, occluders). Coordinates follow the project's pixel-centre
convention: pixel column i covers [i − 0.5, i + 0.5], so a joint at x = 3.0 is the centre of
column 3. Coverage is the signed distance to the outline clamped to a one-pixel ramp, which is
exact anti-aliasing for straight edges and cheap.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

__all__ = ["Layers", "composite", "covering_layer", "gaussian_blur", "smooth_noise"]


class Layers(NamedTuple):
    """Primitives of B scenes × L layers in drawing order (pixel units unless said otherwise)."""

    start: Tensor  # (B, L, 2) x, y
    end: Tensor  # (B, L, 2)
    radius: Tensor  # (B, L) half-thickness
    box: Tensor  # (B, L) bool: flat ends instead of round caps
    colour: Tensor  # (B, L, 3) in [0, 1]
    opacity: Tensor  # (B, L) 0 = layer absent
    texture: (
        Tensor  # (B, L, 4) amplitude, frequency (cycles/px), phase (rad), along (1) | across (0)
    )
    shading: Tensor  # (B, L) darkening toward the outline (cylinder look), 0 = flat


def composite(
    layers: Layers, background: Tensor, *, return_labels: bool = False
) -> tuple[Tensor, Tensor | None]:
    """Draw `layers` over `background` (B, 3, H, W), back to front.

    Returns
    -------
    images : Tensor, shape (B, 3, H, W)
    labels : Tensor, shape (B, H, W), int64, or None
        Index of the topmost layer covering each pixel centre by more than half (−1: background).
    """
    B, _, H, W = background.shape
    L = layers.radius.shape[1]
    image = background.clone().view(B, 3, H * W)
    labels = torch.full((B, H * W), -1, dtype=torch.long, device=image.device)
    for l in range(L):
        active = layers.opacity[:, l] > 0
        if not bool(active.any()):
            continue
        xs, ys = _window(layers, l, active, H, W)  # (B, 1, kx), (B, ky, 1) pixel indices
        flat = (ys * W + xs).view(B, 1, -1)  # (B, 1, ky·kx)
        alpha, colour = _layer(layers, l, xs.to(image.dtype), ys.to(image.dtype))
        alpha = (alpha * layers.opacity[:, l].view(B, 1, 1)).view(B, 1, -1)
        patch = image.gather(2, flat.expand(B, 3, -1))
        image.scatter_(2, flat.expand(B, 3, -1), torch.lerp(patch, colour.view(B, 3, -1), alpha))
        if return_labels:
            old = labels.gather(1, flat[:, 0])
            labels.scatter_(1, flat[:, 0], torch.where(alpha[:, 0] > 0.5, l, old))
    return image.view(B, 3, H, W), labels.view(B, H, W) if return_labels else None


def _window(layers: Layers, l: int, active: Tensor, H: int, W: int) -> tuple[Tensor, Tensor]:
    """Pixel columns (B, 1, kx) and rows (B, ky, 1) of a window holding layer `l` in each image.

    The window has the same size in every image (the largest outline's box, plus a pixel, so that
    every pixel the layer touches is inside) and lies inside the image, so its pixels are
    distinct; pixels of the window outside the outline get coverage exactly 0.
    """
    ends = torch.stack([layers.start[:, l], layers.end[:, l]], 1)  # (B, 2, 2)
    reach = layers.radius[:, l].view(-1, 1) * (2**0.5) + 1.0  # box corners reach r·√2
    lo = (ends.amin(1) - reach).floor().long()  # (B, 2) x, y
    hi = (ends.amax(1) + reach).ceil().long()
    limit = torch.tensor([W - 1, H - 1], device=lo.device)
    lo, hi = torch.minimum(lo.clamp_min(0), limit), torch.minimum(hi.clamp_min(0), limit)
    span = torch.where(active.view(-1, 1), hi - lo + 1, 1).amax(0)  # (2,) kx, ky
    kx, ky = int(span[0]), int(span[1])
    x0 = lo[:, 0].clamp(max=W - kx).view(-1, 1, 1)
    y0 = lo[:, 1].clamp(max=H - ky).view(-1, 1, 1)
    xs = x0 + torch.arange(kx, device=lo.device).view(1, 1, kx)
    ys = y0 + torch.arange(ky, device=lo.device).view(1, ky, 1)
    return xs, ys


def _layer(layers: Layers, l: int, xs: Tensor, ys: Tensor) -> tuple[Tensor, Tensor]:
    """Coverage (B, H, W) and textured, shaded colour (B, 3, H, W) of layer `l`."""
    B = layers.radius.shape[0]
    ax, ay = layers.start[:, l, 0].view(B, 1, 1), layers.start[:, l, 1].view(B, 1, 1)
    ex = layers.end[:, l, 0].view(B, 1, 1) - ax
    ey = layers.end[:, l, 1].view(B, 1, 1) - ay
    radius = layers.radius[:, l].view(B, 1, 1)
    length = torch.sqrt(ex * ex + ey * ey)
    degenerate = length < 1e-6  # a disc: any axis will do
    ux = torch.where(degenerate, 1.0, ex / length.clamp_min(1e-6))  # unit axis
    uy = torch.where(degenerate, 0.0, ey / length.clamp_min(1e-6))
    dx, dy = xs - ax, ys - ay  # (B, H, W) by broadcasting
    along = dx * ux + dy * uy  # distance along the axis from the start
    across = dx * -uy + dy * ux  # signed distance from the axis
    t = along.clamp(min=0) - (along - length).clamp(min=0)  # along, clamped to [0, length]
    capsule = torch.sqrt((along - t) ** 2 + across**2) - radius
    box = torch.maximum((along - length / 2).abs() - length / 2, across.abs() - radius)
    is_box = layers.box[:, l].view(B, 1, 1)
    distance = torch.where(is_box, box, capsule)
    alpha = (0.5 - distance).clamp(0.0, 1.0)
    amp, freq, phase, mode = layers.texture[:, l].unbind(-1)
    coord = torch.where(mode.view(B, 1, 1) > 0.5, along, across)
    pattern = 1 + amp.view(B, 1, 1) * torch.sin(
        2 * torch.pi * freq.view(B, 1, 1) * coord + phase.view(B, 1, 1)
    )
    from_axis = torch.where(is_box, across.abs(), capsule + radius)
    rim = (from_axis / radius.clamp_min(1e-6)).clamp(0, 1) ** 2
    shade = pattern * (1 - layers.shading[:, l].view(B, 1, 1) * rim)
    colour = (layers.colour[:, l].view(B, 3, 1, 1) * shade.unsqueeze(1)).clamp(0.0, 1.0)
    return alpha, colour


def covering_layer(points: np.ndarray, layers: dict[str, np.ndarray]) -> np.ndarray:
    """Index of the topmost layer whose outline contains each point (−1 for none), in numpy.

    Parameters
    ----------
    points : ndarray, shape (P, 2)
    layers : dict of ndarray
        One scene's layers as the fields of `Layers` without the batch dimension (any unit).

    Returns
    -------
    ndarray, shape (P,), int
    """
    start, end, radius = layers["start"], layers["end"], layers["radius"]  # (L, 2) (L, 2) (L,)
    axis = end - start
    length = np.hypot(axis[:, 0], axis[:, 1])
    unit = np.where(length[:, None] > 1e-9, axis / np.maximum(length, 1e-9)[:, None], [1.0, 0.0])
    rel = points[:, None, :] - start[None]  # (P, L, 2)
    along = (rel * unit).sum(-1)
    across = rel[..., 0] * -unit[:, 1] + rel[..., 1] * unit[:, 0]
    t = np.clip(along, 0.0, length)
    inside_capsule = np.hypot(along - t, across) < radius
    inside_box = (np.abs(along - length / 2) <= length / 2) & (np.abs(across) < radius)
    inside = np.where(layers["box"], inside_box, inside_capsule) & (layers["opacity"] > 0.5)
    last = inside.shape[1] - 1 - np.argmax(inside[:, ::-1], axis=1)
    return np.where(inside.any(1), last, -1)


def gaussian_blur(images: Tensor, sigma: Tensor) -> Tensor:
    """Blur each image (B, C, H, W) by its own σ (B,) in pixels, separably, with edge padding.

    Written as a weighted sum of shifted copies so that an image's result never depends on the
    other images of the batch.
    """
    B, C, H, W = images.shape
    radius = int(torch.ceil(3 * sigma.max()).item()) if len(sigma) else 0
    if radius < 1:
        return images
    offsets = torch.arange(-radius, radius + 1, device=images.device, dtype=images.dtype)
    weights = torch.exp(-0.5 * (offsets / sigma.clamp_min(1e-3).view(B, 1)) ** 2)
    weights = (weights / weights.sum(1, keepdim=True)).view(B, 1, 1, 1, -1)  # (B, 1, 1, 1, K)
    out = images
    for dim in (3, 2):
        pad = (radius, radius, 0, 0) if dim == 3 else (0, 0, radius, radius)
        padded = torch.nn.functional.pad(out, pad, mode="replicate")
        size = W if dim == 3 else H
        acc = torch.zeros_like(out)
        for k in range(2 * radius + 1):
            acc = acc + weights[..., k] * padded.narrow(dim, k, size)
        out = acc
    return out


def smooth_noise(grids: Tensor, size: int) -> Tensor:
    """Upsample low-resolution grids (B, C, g, g) bicubically to (B, C, size, size)."""
    return torch.nn.functional.interpolate(
        grids, size=(size, size), mode="bicubic", align_corners=False
    )
