"""Predict and evaluate a pose model on datasets that follow the pose dataset contract.

Items are dicts ``{"image" (3, S, S), "joints" (J, 2) input px, "visible" (J,), "index",
"head_size"}``; datasets carry ``skeleton``. :func:`predict` forwards a dataset in order with
the model in eval mode and decodes the last stack's heatmaps to joints; it can average them with
the mirrored image's (flip test) and also return the heatmaps, the embeddings and the
predictions of an auxiliary module (``aux.predict(features) -> (B,)`` if the module has
``predict``, else ``aux(features, None) -> (B,)``). :func:`evaluate` scores the decoded joints
with PCK@α (torso normaliser), PCKh@α (the items' head boxes) or PCK-bbox@α (the box around
the annotated joints, any skeleton).

On CUDA, mixed precision (bfloat16 where supported, else float16) is used when ``amp`` is on;
on CPU it is never used. The helpers that choose and enter it (:func:`amp_dtype`,
:func:`autocast`) and those that find a dataset's skeleton under ``Subset`` wrappers
(:func:`base_dataset`, :func:`dataset_skeleton`) are shared with :mod:`eglpp.pose.train`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from eglpp.pose.heatmaps import decode_heatmaps, flip_heatmaps, heatmap_to_input
from eglpp.pose.hourglass import STRIDE, StackedHourglass
from eglpp.pose.metrics import pck, pck_se
from eglpp.pose.normalisers import METRICS, metric_normaliser
from eglpp.pose.oks import keypoint_sigmas, oks_summary
from eglpp.pose.skeleton import Skeleton

__all__ = [
    "Predictions",
    "predict",
    "evaluate",
    "amp_dtype",
    "autocast",
    "base_dataset",
    "dataset_skeleton",
    "dataset_joints",
]


def amp_dtype(device: torch.device, amp: bool) -> torch.dtype | None:
    """The mixed-precision dtype on ``device``: None (full precision) off CUDA or without
    ``amp``, else bfloat16 where the GPU supports it and float16 otherwise."""
    if device.type != "cuda" or not amp:
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast(device: torch.device, dtype: torch.dtype | None) -> torch.autocast:
    """The autocast context for ``dtype`` from :func:`amp_dtype` (disabled when it is None)."""
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


@dataclass
class Predictions:
    joints: np.ndarray | None  # (N, J, 2) decoded joints, input px (None: not a pose model)
    maxvals: np.ndarray | None  # (N, J) heatmap maxima (None: not a pose model)
    indices: np.ndarray  # (N,) the items' "index" (positions in the dataset)
    heatmaps: np.ndarray | None = None  # (N, J, h, w) last stack, if requested
    embeddings: np.ndarray | None = None  # (N, C), if requested
    aux: np.ndarray | None = None  # (N,) the aux module's predictions, if given
    prediction: np.ndarray | None = None  # (N, ...) a model's whole prediction, if requested


def base_dataset(dataset: Dataset) -> Dataset:
    """The dataset under any nesting of ``torch.utils.data.Subset``."""
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    return dataset


def dataset_skeleton(dataset: Dataset) -> Skeleton:
    """The ``skeleton`` of a pose dataset (or of the dataset under its ``Subset`` wrappers);
    TypeError for a dataset that does not follow the pose dataset contract."""
    base = base_dataset(dataset)
    skeleton = getattr(base, "skeleton", None)
    if skeleton is None:
        raise TypeError(
            f"{type(base).__name__} has no 'skeleton' attribute: pose datasets must "
            "follow the dataset contract (items dicts, attributes skeleton and input_size)"
        )
    return skeleton


@torch.no_grad()
def _run(model, dataset, *, batch_size, device, flip_test, heatmaps, embeddings, aux, amp):
    """Forward the whole dataset in order: Predictions plus the ground truth (joints, visible,
    head_size) of every item."""
    device = torch.device(device)
    perm = dataset_skeleton(dataset).flip_permutation()
    model.to(device).eval()
    if aux is not None:
        aux.to(device).eval()
    dtype = amp_dtype(device, amp)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    keep: dict[str, list] = {k: [] for k in ("joints", "maxvals", "indices", "hm", "emb", "aux")}
    truth: dict[str, list] = {"joints": [], "visible": [], "head_size": [], "area": []}
    for batch in loader:
        images = batch["image"].to(device)  # (B, 3, S, S)
        with autocast(device, dtype):
            out = model(images, return_features=aux is not None)
            hm = out.heatmaps[:, -1].float()  # (B, J, h, w)
            if flip_test:
                mirrored = model(images.flip(-1)).heatmaps[:, -1].float()
                hm = 0.5 * (hm + flip_heatmaps(mirrored, perm))
            if aux is not None:
                pred_aux = (
                    aux.predict(out.features)
                    if hasattr(aux, "predict")
                    else aux(out.features, None)
                )
                keep["aux"].append(pred_aux.float().reshape(-1).cpu())
        coords, maxvals = decode_heatmaps(hm)
        keep["joints"].append(heatmap_to_input(coords, STRIDE).cpu())
        keep["maxvals"].append(maxvals.cpu())
        keep["indices"].append(batch["index"])
        if heatmaps:
            keep["hm"].append(hm.cpu())
        if embeddings:
            keep["emb"].append(out.embedding.float().cpu())
        for key in truth:
            if key in batch:  # "area": image datasets only
                truth[key].append(batch[key])
    if not keep["joints"]:
        raise ValueError("predict: the dataset is empty")

    def cat(key, source=keep):
        return torch.cat(source[key]).numpy() if source[key] else None

    preds = Predictions(
        joints=cat("joints"),
        maxvals=cat("maxvals"),
        indices=cat("indices"),
        heatmaps=cat("hm"),
        embeddings=cat("emb"),
        aux=cat("aux"),
    )
    return preds, {key: cat(key, truth) for key in truth}


def predict(
    model: StackedHourglass,
    dataset: Dataset,
    *,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    flip_test: bool = False,
    return_heatmaps: bool = False,
    return_embeddings: bool = False,
    aux: nn.Module | None = None,
    amp: bool = True,
) -> Predictions:
    """Decoded joints (input px) for every item, in dataset order, with the model in eval mode.

    ``flip_test`` averages the last stack's heatmaps with the mirrored image's (channels
    swapped by ``dataset.skeleton``); embeddings and aux predictions come from the unflipped
    image. ``return_heatmaps`` keeps the (N, J, h, w) float32 heatmaps: mind the memory for a
    large pool (predict a ``Subset`` at a time). ``amp`` has an effect on CUDA only.
    """
    preds, _ = _run(
        model,
        dataset,
        batch_size=batch_size,
        device=device,
        flip_test=flip_test,
        heatmaps=return_heatmaps,
        embeddings=return_embeddings,
        aux=aux,
        amp=amp,
    )
    return preds


def evaluate(
    model: StackedHourglass,
    dataset: Dataset,
    *,
    metric: str = "pck",
    alpha: float | None = None,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    flip_test: bool = False,
    torso_mode: str = "lsp",
    amp: bool = True,
    baseline: np.ndarray | None = None,
    oks_sigmas: Sequence[float] | None = None,
) -> dict:
    """PCK@α (``metric="pck"``, torso normaliser, default α 0.2), PCKh@α (``"pckh"``, the
    items' ``head_size``, default α 0.5, mean without pelvis and thorax) or PCK-bbox@α
    (``"pckb"``, the box around the annotated joints, default α 0.2) of ``model``.

    Returns ``{"metric": "PCK@0.2", "mean": float, "se": float, "n_joints": int, "per_joint":
    {joint: float}, "n": int}`` (``se``: the standard error of ``mean`` over the ``n`` people,
    :func:`~eglpp.pose.metrics.pck_se`; ``n_joints`` the joints it counts), and with
    ``baseline`` (J, 2), e.g. the training set's :func:`~eglpp.pose.metrics.mean_pose`,
    ``"baseline"`` and ``"baseline_se"``: the metric of predicting that pose for every image.

    Where the people's areas are known (COCO files) and the skeleton has OKS sigmas
    (``oks_sigmas``, else COCO's for COCO's keypoints: :func:`~eglpp.pose.oks.keypoint_sigmas`),
    also ``"oks"``: COCO's keypoint AP of the predictions, one per person on its image, scored
    by its mean heatmap maximum (:func:`~eglpp.pose.oks.oks_summary`), in input px (OKS is
    the same in any similar frame: the items' areas are scaled by the crop); a labelled
    keypoint outside the person's crop (rare with COCO boxes, cropped 1.25× their side) does
    not count, as in PCK.
    """
    if metric not in METRICS:
        raise ValueError(f"evaluate: metric must be one of {', '.join(METRICS)}, got {metric!r}")
    _, usual_alpha, label = METRICS[metric]
    alpha = alpha if alpha is not None else usual_alpha
    skeleton = dataset_skeleton(dataset)
    preds, truth = _run(
        model,
        dataset,
        batch_size=batch_size,
        device=device,
        flip_test=flip_test,
        heatmaps=False,
        embeddings=False,
        aux=None,
        amp=amp,
    )
    try:
        norm, mean_joints = metric_normaliser(
            metric, skeleton, truth["joints"], truth["visible"], truth["head_size"], torso_mode
        )
    except ValueError as exc:
        raise ValueError(f"evaluate: {exc}") from None
    gt, vis = truth["joints"], truth["visible"]
    res = pck(preds.joints, gt, vis, norm, alpha, mean_joints=mean_joints)
    se, n_joints = pck_se(preds.joints, gt, vis, norm, alpha, mean_joints=mean_joints)
    out = {
        "metric": f"{label}@{alpha:g}",
        "mean": res.mean,
        "se": se,
        "n_joints": n_joints,
        "per_joint": dict(zip(skeleton.joints, res.per_joint.tolist(), strict=True)),
        "n": len(preds.joints),
    }
    oks = _oks(dataset, preds, truth, keypoint_sigmas(skeleton, oks_sigmas))
    out.update({} if oks is None else {"oks": oks})
    if baseline is not None:
        constant = np.broadcast_to(np.asarray(baseline, np.float64), preds.joints.shape)
        out["baseline"] = pck(constant, gt, vis, norm, alpha, mean_joints=mean_joints).mean
        out["baseline_se"] = pck_se(constant, gt, vis, norm, alpha, mean_joints=mean_joints)[0]
    return out


def _oks(dataset: Dataset, preds: Predictions, truth: dict, sigmas: np.ndarray | None):
    """:func:`~eglpp.pose.oks.oks_summary` of ``evaluate``'s predictions (None without sigmas
    or areas)."""
    if sigmas is None or truth["area"] is None:
        return None
    images = _image_ids(dataset, preds.indices)
    return oks_summary(preds.joints, preds.maxvals.mean(1), images, truth["joints"],
                       truth["visible"], truth["area"], sigmas)  # fmt: skip


def _image_ids(dataset: Dataset, indices: np.ndarray) -> np.ndarray:
    """(N,) the image of each item (its ``annotations.image_paths``; people without one are
    each an image of their own)."""
    paths = getattr(getattr(base_dataset(dataset), "annotations", None), "image_paths", None)
    if paths is None:
        return np.asarray(indices).astype(str)
    return np.array([str(paths[int(i)]) for i in indices])


def dataset_joints(dataset: Dataset, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(joints (N, J, 2) input px, visible (N, J) bool) of a pose dataset: its ``joints`` and
    ``visible`` arrays where it has them (rendered people: no image drawn), else read from its
    items (the images are decoded)."""
    if hasattr(dataset, "joints") and hasattr(dataset, "visible"):
        return np.asarray(dataset.joints, np.float64), np.asarray(dataset.visible, bool)
    joints, visible = [], []
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        joints.append(batch["joints"].double().numpy())
        visible.append(batch["visible"].bool().numpy())
    return np.concatenate(joints), np.concatenate(visible)
