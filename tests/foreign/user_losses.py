"""Training losses of a user's own, for ``eglpp select --model … --loss user_losses:FN``."""

from torch import Tensor

from eglpp.scoring.labels import pose_heatmap_loss


def four_times(pred: Tensor, target: Tensor, weight: Tensor) -> Tensor:
    """4 × eglpp's default heatmap loss: every gradient norm 4 × the default's."""
    return 4.0 * pose_heatmap_loss(pred, target, weight)


def per_joint(pred: Tensor, target: Tensor, weight: Tensor) -> Tensor:
    """Not a scalar: one value per joint (refused)."""
    return ((pred - target) ** 2).mean(dim=(-2, -1))[0]
