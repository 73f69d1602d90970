"""Four small networks that eglpp did not design, random-initialised, for the contract tests.

- :func:`simple_baseline`: SimpleBaseline (Xiao, Wu and Wei, ECCV 2018): a ResNet-18 backbone
  (He et al., BasicBlock, the published [2, 2, 2, 2] layout, here with narrow widths) and its
  head of three 4×4 stride-2 deconvolutions with batch norm and ReLU, then a 1×1 convolution
  to J heatmaps at stride 4;
- :func:`coordinate_net`: a direct coordinate regressor, ``{"coords": (B, J, 2)}`` in input px;
- :func:`small_vit`: a vision transformer from PyTorch's own ``nn.TransformerEncoderLayer``
  (patch embedding, learned positions, LayerNorm, attention) regressing (B, J, 2), output
  ``(coords, tokens)``;
- :func:`tabular_mlp`: an MLP regressor, (B, 1).

Each factory takes keyword arguments only, so ``eglpp select --model
foreign_networks:simple_baseline`` can build it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class BasicBlock(nn.Module):
    """He et al.'s basic residual block: two 3×3 convolutions, a projection when the shape
    changes."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class SimpleBaseline(nn.Module):
    """ResNet-18 ([2, 2, 2, 2] BasicBlocks, widths w, 2w, 4w, 8w) + 3 deconvolutions + 1×1."""

    def __init__(self, n_joints: int = 14, width: int = 8, deconv: int = 16) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.MaxPool2d(3, 2, 1),
        )  # fmt: skip
        layers, cin = [], width
        for i, stride in enumerate((1, 2, 2, 2)):
            cout = width * 2**i
            layers.append(nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)))
            cin = cout
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        head = []
        for _ in range(3):
            head += [
                nn.ConvTranspose2d(cin, deconv, 4, 2, 1, bias=False),
                nn.BatchNorm2d(deconv),
                nn.ReLU(),
            ]
            cin = deconv
        self.deconv = nn.Sequential(*head)
        self.final = nn.Conv2d(deconv, n_joints, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return self.final(self.deconv(x))  # (B, J, H/4, W/4)


def simple_baseline(n_joints: int = 14, width: int = 8, seed: int = 0) -> SimpleBaseline:
    torch.manual_seed(seed)
    return SimpleBaseline(n_joints, width).eval()


class CoordinateNet(nn.Module):
    """Two strided convolutions, global pooling, two fully connected layers: (B, J, 2) px."""

    def __init__(self, n_joints: int = 14, size: int = 32) -> None:
        super().__init__()
        self.n_joints, self.size = n_joints, size
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 16, 3, 2, 1), nn.BatchNorm2d(16), nn.ReLU(),
        )  # fmt: skip
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.ReLU())
        self.head = nn.Linear(32, 2 * n_joints)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        z = self.features(self.body(x).mean(dim=(-2, -1))[..., None, None])
        coords = self.head(z).view(-1, self.n_joints, 2) * (self.size / 4) + self.size / 2
        return {"coords": coords, "features": z}


def coordinate_net(n_joints: int = 14, size: int = 32, seed: int = 0) -> CoordinateNet:
    torch.manual_seed(seed)
    return CoordinateNet(n_joints, size).eval()


class SmallViT(nn.Module):
    """Patch embedding, learned positions, ``nn.TransformerEncoder`` of
    ``nn.TransformerEncoderLayer``, LayerNorm, mean token → (B, J, 2) coordinates."""

    def __init__(self, n_joints: int = 14, size: int = 32, patch: int = 8, dim: int = 16):
        super().__init__()
        self.n_joints, self.size = n_joints, size
        self.patch = nn.Conv2d(3, dim, patch, patch)
        self.position = nn.Parameter(torch.randn(1, (size // patch) ** 2, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, 2, 2 * dim, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 2 * n_joints)

    def tokens(self, x: Tensor) -> Tensor:
        t = self.patch(x).flatten(2).transpose(1, 2) + self.position  # (B, N, D)
        return self.norm(self.encoder(t))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        t = self.tokens(x)
        coords = self.head(t.mean(1)).view(-1, self.n_joints, 2) * (self.size / 4) + self.size / 2
        return coords, t


def vit_embedding(model: SmallViT, x: Tensor) -> Tensor:
    """The ViT's representation: the mean of its normalised tokens, (B, D)."""
    return model.tokens(x).mean(1)


def small_vit(n_joints: int = 14, size: int = 32, seed: int = 0) -> SmallViT:
    torch.manual_seed(seed)
    return SmallViT(n_joints, size).eval()


def tabular_mlp(n_features: int = 10, hidden: int = 32, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(n_features, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
        nn.Linear(hidden, 1),
    )  # fmt: skip


def not_a_module() -> dict:
    """A factory that returns something else (``eglpp select --model`` must refuse it)."""
    return {"layer": 1}
