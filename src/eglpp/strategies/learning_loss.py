"""Learning Loss (Yoo & Kweon): an auxiliary head predicts each image's training loss.

The head reads the last hourglass's multi-scale features: per scale, global average pooling,
a fully connected layer and a ReLU; the concatenation goes through one more fully connected
layer to a scalar. It is trained jointly with the pose network (``eglpp.pose.train.fit(aux=...)``)
with the margin ranking loss on pairs formed by splitting the batch in halves (item i against
item B−1−i, as the original code does), or with LearningLoss++'s KL objective: the KL divergence
from the batch softmax of the true losses to the batch softmax of the predicted ones. True losses
are standardised within the batch before that softmax (a **choice**: the heatmap MSE is ~1e-3, at
which scale a softmax is flat). The strategy selects the highest predicted loss.

References
----------
Yoo, D. and Kweon, I. S. "Learning Loss for Active Learning." CVPR 2019.
Shukla, M. and Ahmed, S. "A Mathematical Analysis of Learning Loss for Active Learning in
Regression." CVPR Workshops 2021.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from eglpp.strategies.base import PoolInputs, Strategy

__all__ = ["LearningLoss", "LossPredictionHead", "margin_ranking_loss", "kl_ranking_loss"]


def margin_ranking_loss(predicted: Tensor, target: Tensor, margin: float = 1.0) -> Tensor:
    """Yoo & Kweon's pairwise loss: pairs (i, B−1−i) for i < B // 2.

    ``mean(max(0, −sign(ℓ_i − ℓ_j)·(l̂_i − l̂_j) + margin))``; zero (with a gradient path) when
    the batch has fewer than two items.
    """
    B = predicted.shape[0]
    if B < 2:
        return predicted.sum() * 0.0
    half = B // 2
    diff_pred = (predicted - predicted.flip(0))[:half]
    sign = torch.sign((target - target.flip(0))[:half]).detach()
    return F.relu(-sign * diff_pred + margin).mean()


def kl_ranking_loss(predicted: Tensor, target: Tensor) -> Tensor:
    """LearningLoss++: KL(softmax(standardised true losses) ‖ softmax(predicted)) over the batch."""
    if predicted.shape[0] < 2:
        return predicted.sum() * 0.0
    t = target.detach()
    t = (t - t.mean()) / t.std().clamp_min(1e-12)
    return F.kl_div(
        F.log_softmax(predicted, 0), F.log_softmax(t, 0), reduction="sum", log_target=True
    )


class LossPredictionHead(nn.Module):
    """GAP → FC → ReLU per scale, concatenated, → FC: one predicted loss per image.

    Call ``head(features, per_example_loss)`` for the training objective (a scalar, added to the
    pose loss) and ``head.predict(features)`` for the (B,) predicted losses.

    Parameters
    ----------
    feature_channels : tuple of int
        Channels of each feature tensor (``StackedHourglass.feature_channels()``).
    hidden : int
        Units of each scale's fully connected layer (Yoo & Kweon: 128).
    objective : {"margin", "kl"}
    margin : float
        Margin of the ranking loss (Yoo & Kweon: 1).
    weight : float
        Multiplier λ of the objective.
    detach_features : bool
        True: no gradient from this head reaches the pose network.
    """

    def __init__(
        self,
        feature_channels: tuple[int, ...],
        hidden: int = 128,
        objective: str = "margin",
        margin: float = 1.0,
        weight: float = 1.0,
        detach_features: bool = True,
    ):
        super().__init__()
        if not feature_channels or any(int(c) < 1 for c in feature_channels):
            raise ValueError(f"feature_channels must be positive ints, got {feature_channels!r}")
        if objective not in ("margin", "kl"):
            raise ValueError(f"objective must be 'margin' or 'kl', got {objective!r}")
        self.feature_channels = tuple(int(c) for c in feature_channels)
        self.objective, self.margin, self.weight = objective, margin, weight
        self.detach_features = detach_features
        self.scales = nn.ModuleList(nn.Linear(c, hidden) for c in self.feature_channels)
        self.out = nn.Linear(hidden * len(self.feature_channels), 1)

    def predict(self, features: tuple[Tensor, ...]) -> Tensor:
        """Predicted loss per image, (B,)."""
        if len(features) != len(self.scales):
            raise ValueError(f"expected {len(self.scales)} feature tensors, got {len(features)}")
        pooled = []
        for x, fc in zip(features, self.scales, strict=True):
            x = x.detach() if self.detach_features else x
            pooled.append(F.relu(fc(x.mean(dim=(-2, -1)))))  # (B, C) → (B, hidden)
        return self.out(torch.cat(pooled, dim=1)).squeeze(1)  # (B,)

    def forward(self, features: tuple[Tensor, ...], per_example_loss: Tensor) -> Tensor:
        predicted = self.predict(features)
        if self.objective == "margin":
            loss = margin_ranking_loss(predicted, per_example_loss, self.margin)
        else:
            loss = kl_ranking_loss(predicted, per_example_loss)
        return self.weight * loss


@dataclass(frozen=True)
class LearningLoss(Strategy):
    """Select the highest loss predicted by the auxiliary head trained with the pose network."""

    hidden: int = 128  # units per scale (Yoo & Kweon: 128)
    objective: str = "margin"  # "margin" (Yoo & Kweon) or "kl" (LearningLoss++)
    margin: float = 1.0  # ranking margin (Yoo & Kweon: 1)
    weight: float = 1.0  # λ, multiplier of the head's loss
    detach_features: bool = True  # no gradients into the pose net (the original lets them in)
    head_epochs: int = 10  # eglpp run: epochs fitting the head on the frozen base model before
    # cycle 1 (training, not selection: eglpp select takes the head from the checkpoint)

    name: ClassVar[str] = "learning-loss"
    needs: ClassVar[frozenset[str]] = frozenset({"predicted_loss"})

    def __post_init__(self) -> None:
        if self.objective not in ("margin", "kl"):
            raise ValueError(f"objective must be 'margin' or 'kl', got {self.objective!r}")
        if self.hidden < 1:
            raise ValueError(f"hidden must be at least 1, got {self.hidden}")
        if self.head_epochs < 0:
            raise ValueError(f"head_epochs must be >= 0, got {self.head_epochs}")

    def auxiliary(self, feature_channels: tuple[int, ...]) -> LossPredictionHead:
        return LossPredictionHead(
            feature_channels,
            hidden=self.hidden,
            objective=self.objective,
            margin=self.margin,
            weight=self.weight,
            detach_features=self.detach_features,
        )

    def score(self, inputs: PoolInputs, rng: np.random.Generator) -> np.ndarray:
        self.check_inputs(inputs)
        self._check_rng(rng)
        return np.asarray(inputs.predicted_loss, dtype=np.float64)
