"""The labelled set's embeddings and labels for a contract's model, each computed once.

Two kinds of labelled set:

- **pairs** ``(input, target)`` (a Dataset of pairs, or tensors): the targets as they are, and
  the contract's ``loss(prediction, target)``;
- **pose data sets** (items dicts with ``"image"``, ``"joints"`` (J, 2) input px,
  ``"visible"``): labels built for the model's prediction, Gaussian heatmaps (σ ``sigma``, at
  the prediction's resolution) for a heatmap prediction, the joints for a (B, J, 2) one, with
  the visibility as the loss's weight (the heatmap MSE of training, or the coordinates' MSE).

With ``label_source="prediction"`` the labels are the model's own predictions of the labelled
inputs (EGL++'s reference code), all weights one.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from eglpp.gradnorm.base import LossFn
from eglpp.pose.heatmaps import heatmap_loss, target_heatmaps
from eglpp.pose.inference import Predictions
from eglpp.scoring.contract import ModelContract, as_contract, input_of, mse_per_example
from eglpp.scoring.forward import forward_pool, heatmaps_of_prediction, prediction_kind

__all__ = ["LabelledCache", "pose_heatmap_loss", "coordinate_loss"]


def pose_heatmap_loss(pred: Tensor, target: Tensor, weight: Tensor) -> Tensor:
    """The heatmap training loss of (B, J, h, w) or (B, S, J, h, w) predictions."""
    return heatmap_loss(pred[:, None] if pred.dim() == 4 else pred, target, weight)


def coordinate_loss(pred: Tensor, target: Tensor, weight: Tensor) -> Tensor:
    """Mean squared error of (B, J, 2) coordinates over the visible joints, batch mean."""
    sq = (pred.float() - target.float()).pow(2).mean(-1)  # (B, J)
    return (sq * weight.float()).mean()


class LabelledCache:
    """Embeddings and labels of ``labelled`` for ``model`` (a :class:`ModelContract` or a
    ``StackedHourglass``), computed when first asked and kept.

    Parameters
    ----------
    model : ModelContract or StackedHourglass
    labelled : Dataset
        Pairs or a pose data set (module docstring).
    batch_size, device : of the forward passes
    sigma : float
        σ of the ground-truth heatmaps of a pose data set (heatmap px, the training ``sigma``).
    """

    def __init__(self, model, labelled: Dataset, *, batch_size: int, device, sigma: float = 1.0):
        self.contract: ModelContract = as_contract(model)
        self.model, self.labelled = self.contract.model, labelled
        self.batch_size, self.device, self.sigma = batch_size, device, sigma
        first = labelled[0] if len(labelled) else None
        self.pose = isinstance(first, dict) and "joints" in first
        self._predictions: Predictions | None = None
        self._truth: tuple[Tensor, Tensor] | None = None
        self._targets: dict[str, tuple[Tensor, Tensor]] = {}
        self._shape: tuple[int, ...] | None = None
        #: what computed the gradient norms (``eglpp.gradnorm.plan.describe``), once they ran
        self.gradnorm_method: str | None = None

    def _forward(self, want: frozenset[str]) -> Predictions:
        return forward_pool(
            self.contract, self.labelled, want=want, batch_size=self.batch_size,
            device=self.device,
        )  # fmt: skip

    def predictions(self) -> Predictions:
        """The model's predictions of the labelled inputs, with their (L, C) embeddings."""
        if self._predictions is None:
            self._predictions = self._forward(frozenset({"embeddings"}))
        return self._predictions

    def embeddings(self) -> np.ndarray:
        """(L, C) embeddings of the labelled inputs."""
        return self.predictions().embeddings

    def prediction_shape(self) -> tuple[int, ...]:
        """The shape of the model's prediction of one labelled input, (1, ...)."""
        if self._shape is None:
            x = input_of(next(iter(DataLoader(self.labelled, batch_size=1))))
            self.model.to(self.device).eval()
            with torch.no_grad():
                out = self.contract.outputs(x.to(self.device), frozenset())
            self._shape = tuple(out["prediction"].shape)
        return self._shape

    def truth(self) -> tuple[Tensor, Tensor]:
        """(joints (L, J, 2) input px, visible (L, J) bool) of a pose labelled set, read once."""
        if not self.pose:
            raise ValueError("the labelled set has no joints: its items are not pose dicts")
        if self._truth is None:
            loader = DataLoader(self.labelled, batch_size=256, shuffle=False)
            batches = [(b["joints"], b["visible"]) for b in loader]
            self._truth = (torch.cat([j for j, _ in batches]), torch.cat([v for _, v in batches]))
        return self._truth

    def loss_fn(self) -> LossFn:
        """The one-example loss the gradient norms differentiate (``eglpp.gradnorm.LossFn``)."""
        if self.contract.weighted_loss is not None or not self.pose:
            return self.contract.gradnorm_loss()
        kind = prediction_kind(self.prediction_shape())
        return pose_heatmap_loss if kind == "heatmaps" else coordinate_loss

    def targets(self, label_source: str) -> tuple[Tensor, Tensor]:
        """(labels (L, ...), the loss's weights (L, ...)) for ``label_source``."""
        if label_source not in ("ground_truth", "prediction"):
            raise ValueError(
                f"label_source must be 'ground_truth' or 'prediction', got {label_source!r}"
            )
        if label_source not in self._targets:
            make = self._pose_targets if self.pose else self._pair_targets
            self._targets[label_source] = make(label_source)
        return self._targets[label_source]

    def _pair_targets(self, label_source: str) -> tuple[Tensor, Tensor]:
        if label_source == "prediction":
            targets = torch.from_numpy(self._forward(frozenset({"prediction"})).prediction)
        else:
            loader = DataLoader(self.labelled, batch_size=256, shuffle=False)
            targets = torch.cat([_target_of(b) for b in loader]).float()
        return targets, torch.ones(len(targets), 1)

    def _pose_targets(self, label_source: str) -> tuple[Tensor, Tensor]:
        shape = self.prediction_shape()
        kind = prediction_kind(shape)
        if kind == "other":
            raise ValueError(
                f"{self.contract.flag('prediction')}: the model predicts {shape}, neither "
                "heatmaps (B, J, h, w) nor coordinates (B, J, 2): no labels can be made of the "
                "labelled joints for it"
            )
        joints, visible = self.truth()  # (L, J, 2), (L, J)
        if label_source == "prediction":
            pred = self._forward(frozenset({"heatmaps"} if kind == "heatmaps" else set()))
            targets = pred.heatmaps if kind == "heatmaps" else pred.joints
            return torch.from_numpy(targets).float(), torch.ones(visible.shape)
        if kind == "coordinates":
            return joints.float(), visible.float()
        H, W = self.labelled[0]["image"].shape[-2:]
        h, w = heatmaps_of_prediction(torch.empty(shape)).shape[-2:]
        if W % w or H % h or W // w != H // h:
            raise ValueError(f"heatmaps of {h}×{w} px are no common fraction of the {H}×{W} input")
        return target_heatmaps(joints, visible, (H, W), self.sigma, W // w), visible.float()

    def check_pairs(self, n: int = 4) -> None:
        """Raise naming ``loss``/``prediction`` unless the loss of the model's predictions of
        the first ``n`` labelled pairs is one value per example (and, for the default mean
        squared error, unless prediction and target have the same shape)."""
        batch = next(iter(DataLoader(self.labelled, batch_size=n, shuffle=False)))
        x, target = input_of(batch).to(self.device), _target_of(batch).to(self.device).float()
        self.model.to(self.device).eval()
        with torch.no_grad():
            pred = self.contract.outputs(x, frozenset())["prediction"]
        c = self.contract
        if c.loss is None and pred.shape != target.shape:
            raise ValueError(
                f"{c.flag('prediction')}: the model predicts {tuple(pred.shape[1:])} per example "
                f"but the labelled targets are {tuple(target.shape[1:])} (the default loss, "
                "mean squared error, needs the same shape; or pass loss=)"
            )
        with torch.no_grad():
            value = (c.loss or mse_per_example)(pred, target)
        if not isinstance(value, Tensor) or tuple(value.shape) != (len(x),):
            got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise ValueError(
                f"{c.flag('loss')}: must return one loss per example, shape ({len(x)},), got "
                f"{got}; use reduction='none' and average over all but the batch dimension"
            )


def _target_of(batch) -> Tensor:
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        return torch.as_tensor(batch[1])
    raise ValueError(
        "labelled: expected (input, target) pairs (a Dataset of pairs or a tuple of tensors), "
        f"got items of type {type(batch).__name__}"
    )
