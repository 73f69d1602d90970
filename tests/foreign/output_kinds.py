"""Networks whose output is no tensor, for ``eglpp select --model`` (tests/practitioner)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class TupleOutput(nn.Module):
    """(heatmaps (B, 14, h, w), {"aux": (B, 14)}): the prediction is index 0."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 14, 3, stride=4, padding=1)

    def forward(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        h = self.conv(x)
        return h, {"aux": h.mean(dim=(2, 3))}


def tuple_output() -> TupleOutput:
    torch.manual_seed(0)
    return TupleOutput().eval()
