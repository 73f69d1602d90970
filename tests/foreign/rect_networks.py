"""Small user networks that take a rectangular input, 256 high × 192 wide (mmpose's top-down
size), for ``eglpp select --model … --input-size 256x192``.

- :func:`probe_net`: predicts coordinates (B, J, 2) in input px that tell what it was fed:
  every joint at (``x0`` + 10 · the mean of the red channel, ``y0``), so a test can read the
  normalisation eglpp applied and where the crop's pixels went from the pre-annotations; it
  refuses any input that is not (B, 3, 256, 192);
- :func:`pooled_heatmaps`: a heatmap network (J heatmaps at stride 4, 64 × 48) that averages the
  input down by 4 first, cheap enough to train on CPU;
- :func:`pooled_unet`: the same input pooling, then a small U-Net (three 2× poolings, skips
  added back) to J heatmaps at 64 × 48: a network that learns the rendered people in minutes
  on a CPU, for the contact sheet check of a 256 × 192 ``--model`` selection.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

INPUT_HW = (256, 192)


class ProbeNet(nn.Module):
    """Coordinates (B, J, 2) = (x0 + 10 · mean red, y0) for every joint; embedding: features."""

    def __init__(self, n_joints: int, x0: float, y0: float) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.AvgPool2d(16), nn.Conv2d(3, 4, 1))
        self.points = nn.Parameter(torch.tensor([x0, y0]).repeat(n_joints, 1))

    def forward(self, x: Tensor) -> Tensor:
        if tuple(x.shape[-3:]) != (3, *INPUT_HW):
            raise ValueError(f"ProbeNet takes (B, 3, 256, 192), got {tuple(x.shape)}")
        f = self.features(x)  # (B, 4, 16, 12)
        red = x[:, 0].mean(dim=(-2, -1))  # (B,)
        shift = torch.stack([10 * red, torch.zeros_like(red)], dim=-1)  # (B, 2)
        return self.points[None] + shift[:, None] + 0.0 * f.mean()


def probe_net(n_joints: int = 17, x0: float = 60.0, y0: float = 200.0) -> nn.Module:
    return ProbeNet(n_joints, x0, y0)


class PooledHeatmaps(nn.Module):
    """AvgPool(4) → 4 conv-BN-ReLU (dilations 1, 2, 4, 8) → 1×1 to J heatmaps (B, J, H/4, W/4)."""

    def __init__(self, n_joints: int, width: int) -> None:
        super().__init__()
        layers, cin = [nn.AvgPool2d(4)], 3
        for d in (1, 2, 4, 8):
            layers += [nn.Conv2d(cin, width, 3, 1, d, dilation=d, bias=False),
                       nn.BatchNorm2d(width), nn.ReLU()]  # fmt: skip
            cin = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv2d(width, n_joints, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def pooled_heatmaps(n_joints: int = 17, width: int = 32, seed: int = 0) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return PooledHeatmaps(n_joints, width)


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU())  # fmt: skip


class PooledUNet(nn.Module):
    """AvgPool(4) → U-Net over 64 × 48 (widths w, 2w, 2w, 2w) → J heatmaps (B, J, H/4, W/4)."""

    def __init__(self, n_joints: int, width: int) -> None:
        super().__init__()
        self.pool_in = nn.AvgPool2d(4)
        widths = (width, 2 * width, 2 * width, 2 * width)
        self.down = nn.ModuleList(
            _block(cin, cout) for cin, cout in zip((3, *widths[:-1]), widths, strict=True)
        )
        self.up = nn.ModuleList(_block(widths[i + 1], widths[i]) for i in range(3))
        self.features = _block(width, width)
        self.head = nn.Conv2d(width, n_joints, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool_in(x)  # (B, 3, H/4, W/4)
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else nn.functional.max_pool2d(x, 2))
            skips.append(x)
        for i in (2, 1, 0):  # (B, w_i, H/2^(i+2), W/2^(i+2)) each
            x = skips[i] + nn.functional.interpolate(self.up[i](x), scale_factor=2.0)
        return self.head(self.features(x))


def pooled_unet(n_joints: int = 17, width: int = 24, seed: int = 0) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return PooledUNet(n_joints, width)
