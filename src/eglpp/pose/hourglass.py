"""The stacked hourglass network of Newell et al. (ECCV 2016), channels-first.

The network reads an image (B, 3, H, W) and returns, for every stack, one heatmap per joint at a
quarter of the input resolution. Each stack is an hourglass (a recursive encoder-decoder with a
skip branch at every scale) followed by a residual and a 1×1 linear layer; the heatmap head is a
1×1 convolution. Between stacks, the features and the predicted heatmaps are mapped back to the
feature width and added to the stack's input (intermediate supervision, Newell Sec. 3.4).

All residual blocks are pre-activation bottlenecks (BN → ReLU → conv, three times:
1×1 to C/2, 3×3, 1×1 back to C), as in Newell's Fig. 4. No loss code and no device calls live
here; the module works with ``torch.func.functional_call`` and ``torch.func.vmap`` in eval mode
(batch norm then uses its running statistics), which is how EGL++ takes per-example gradients.

References
----------
A. Newell, K. Yang, J. Deng. Stacked Hourglass Networks for Human Pose Estimation. ECCV 2016.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["HourglassConfig", "HourglassOutput", "Residual", "Hourglass", "StackedHourglass"]

STRIDE = 4  # the stem downsamples by 4: heatmaps are (H/4, W/4)


@dataclass(frozen=True)
class HourglassConfig:
    n_stacks: int = 2  # the paper: 2 (Newell: 8)
    channels: int = 256  # feature width C; the paper: 256
    n_joints: int = 14  # J: 14 for LSP, 16 for MPII
    depth: int = 4  # recursion levels of each hourglass; input size divisible by 4·2^depth
    in_channels: int = 3  # RGB

    def __post_init__(self) -> None:
        for name in ("n_stacks", "n_joints", "depth", "in_channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"HourglassConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.channels < 4 or self.channels % 4:
            raise ValueError(
                f"HourglassConfig.channels must be a positive multiple of 4, got {self.channels}"
            )

    @property
    def size_multiple(self) -> int:
        """Input height and width must be multiples of this: the stem's 4 times 2^depth."""
        return STRIDE * 2**self.depth


class HourglassOutput(NamedTuple):
    heatmaps: Tensor  # (B, S, J, H/4, W/4), every stack
    embedding: Tensor  # (B, C): GAP of the features feeding the last heatmap head
    features: tuple[Tensor, ...] | None  # last hourglass's output at each scale, finest first


class Residual(nn.Module):
    """Pre-activation bottleneck residual: x + conv1x1(conv3x3(conv1x1(x))), BN-ReLU before each."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        mid = out_channels // 2
        self.bn1, self.conv1 = nn.BatchNorm2d(in_channels), nn.Conv2d(in_channels, mid, 1)
        self.bn2, self.conv2 = nn.BatchNorm2d(mid), nn.Conv2d(mid, mid, 3, padding=1)
        self.bn3, self.conv3 = nn.BatchNorm2d(mid), nn.Conv2d(mid, out_channels, 1)
        self.skip = (
            nn.Identity()
            if in_channels == out_channels
            else nn.Conv2d(in_channels, out_channels, 1)
        )

    def forward(self, x: Tensor) -> Tensor:
        # x: (B, C_in, H, W) -> (B, C_out, H, W)
        y = self.conv1(F.relu(self.bn1(x)))
        y = self.conv2(F.relu(self.bn2(y)))
        y = self.conv3(F.relu(self.bn3(y)))
        return self.skip(x) + y


class Hourglass(nn.Module):
    """One hourglass level: a skip branch at this scale plus (pool → inner → upsample).

    The inner part is another ``Hourglass`` of depth - 1, or a residual at the bottom.
    """

    def __init__(self, depth: int, channels: int):
        super().__init__()
        self.skip = Residual(channels, channels)  # stays at this scale
        self.down = Residual(channels, channels)  # after the 2×2 max pool
        self.inner = Hourglass(depth - 1, channels) if depth > 1 else Residual(channels, channels)
        self.up = Residual(channels, channels)  # before the nearest-neighbour upsampling
        self.depth = depth

    def forward(self, x: Tensor) -> list[Tensor]:
        # x: (B, C, h, w) -> [out (B, C, h, w), inner outputs (B, C, h/2, w/2), ...]
        low = self.down(F.max_pool2d(x, 2))  # (B, C, h/2, w/2)
        inner = self.inner(low)
        scales = inner if isinstance(inner, list) else [inner]
        up = F.interpolate(self.up(scales[0]), scale_factor=2.0, mode="nearest")
        out = self.skip(x) + up  # (B, C, h, w)
        return [out, *scales] if self.depth > 1 else [out]


class Stem(nn.Module):
    """7×7 stride-2 conv, residual, max pool, two residuals: (B, 3, H, W) → (B, C, H/4, W/4)."""

    def __init__(self, in_channels: int, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, channels // 4, 7, stride=2, padding=3)
        self.bn = nn.BatchNorm2d(channels // 4)
        self.res1 = Residual(channels // 4, channels // 2)
        self.res2 = Residual(channels // 2, channels // 2)
        self.res3 = Residual(channels // 2, channels)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.bn(self.conv(x)))  # (B, C/4, H/2, W/2)
        x = F.max_pool2d(self.res1(x), 2)  # (B, C/2, H/4, W/4)
        return self.res3(self.res2(x))  # (B, C, H/4, W/4)


class Stack(nn.Module):
    """Hourglass → residual → 1×1 linear layer (the features) → 1×1 heatmap head."""

    def __init__(self, config: HourglassConfig):
        super().__init__()
        C, J = config.channels, config.n_joints
        self.hourglass = Hourglass(config.depth, C)
        self.residual = Residual(C, C)
        self.linear = nn.Sequential(nn.Conv2d(C, C, 1), nn.BatchNorm2d(C), nn.ReLU())
        self.head = nn.Conv2d(C, J, 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, list[Tensor]]:
        scales = self.hourglass(x)  # [(B, C, h, w), (B, C, h/2, w/2), ...]
        features = self.linear(self.residual(scales[0]))  # (B, C, h, w)
        return self.head(features), features, scales  # heatmaps (B, J, h, w)


class Merge(nn.Module):
    """Maps a stack's features and heatmaps back to C channels, added to the next stack's input."""

    def __init__(self, config: HourglassConfig):
        super().__init__()
        self.features = nn.Conv2d(config.channels, config.channels, 1)
        self.heatmaps = nn.Conv2d(config.n_joints, config.channels, 1)

    def forward(self, x: Tensor, features: Tensor, heatmaps: Tensor) -> Tensor:
        return x + self.features(features) + self.heatmaps(heatmaps)  # (B, C, h, w)


class StackedHourglass(nn.Module):
    """Newell's stacked hourglass; see the module docstring.

    Examples
    --------
    >>> model = StackedHourglass(HourglassConfig(n_stacks=1, channels=16, depth=2))
    >>> out = model(torch.zeros(2, 3, 64, 64))
    >>> tuple(out.heatmaps.shape), tuple(out.embedding.shape)
    ((2, 1, 14, 16, 16), (2, 16))
    """

    def __init__(self, config: HourglassConfig):
        super().__init__()
        self.config = config
        self.stem = Stem(config.in_channels, config.channels)
        self.stacks = nn.ModuleList(Stack(config) for _ in range(config.n_stacks))
        self.merges = nn.ModuleList(Merge(config) for _ in range(config.n_stacks - 1))

    def reset_parameters(self, generator: torch.Generator | None = None) -> StackedHourglass:
        """Re-initialise all weights from ``generator`` (PyTorch's default conv init, BN 1/0).

        Convolutions get Kaiming-uniform weights (a = √5) and uniform biases in ±1/√fan_in,
        exactly PyTorch's defaults but drawn from the given generator, so a model is
        reproducible from a seed without touching the global RNG. Returns ``self``.
        """
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_uniform_(module.weight, a=5**0.5, generator=generator)
                fan_in = module.weight[0].numel()
                nn.init.uniform_(module.bias, -(fan_in**-0.5), fan_in**-0.5, generator=generator)
            elif isinstance(module, nn.BatchNorm2d):
                module.reset_parameters()
        return self

    def feature_channels(self) -> tuple[int, ...]:
        """Channels of each tensor in ``HourglassOutput.features`` (finest scale first)."""
        return (self.config.channels,) * self.config.depth

    def check_input(self, images: Tensor) -> None:
        """Raise a ValueError naming the expected shape unless ``images`` fits this network."""
        cfg, m = self.config, self.config.size_multiple
        if images.dim() != 4 or images.shape[1] != cfg.in_channels:
            raise ValueError(
                f"StackedHourglass expects images (B, {cfg.in_channels}, H, W), "
                f"got shape {tuple(images.shape)}"
            )
        H, W = images.shape[-2:]
        if H % m or W % m:
            raise ValueError(
                f"StackedHourglass with depth {cfg.depth} needs input height and width divisible "
                f"by 4·2^{cfg.depth} = {m}, got {H}×{W}"
            )

    def forward(self, images: Tensor, return_features: bool = False) -> HourglassOutput:
        self.check_input(images)
        x = self.stem(images)  # (B, C, H/4, W/4)
        heatmaps = []
        for i, stack in enumerate(self.stacks):
            hm, features, scales = stack(x)  # (B, J, H/4, W/4), (B, C, H/4, W/4)
            heatmaps.append(hm)
            if i < len(self.merges):
                x = self.merges[i](x, features, hm)
        embedding = features.mean(dim=(-2, -1))  # (B, C)
        return HourglassOutput(
            heatmaps=torch.stack(heatmaps, dim=1),  # (B, S, J, H/4, W/4)
            embedding=embedding,
            features=tuple(scales) if return_features else None,
        )
