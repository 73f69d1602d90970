"""COCO's keypoint AP: object keypoint similarity (OKS) and the average precision over it.

The OKS of a predicted person :math:`\\hat p` and an annotated one :math:`p` is

.. math:: \\mathrm{OKS} = \\frac{\\sum_j [v_j > 0]\\,
    \\exp\\!\\big(-\\lVert \\hat p_j - p_j \\rVert^2 / (2\\, s^2 k_j^2)\\big)}{\\sum_j [v_j > 0]},
    \\qquad k_j = 2 \\sigma_j,

with :math:`s^2` the annotated person's ``area`` (COCO's segment area, in the same pixel
units squared as the joints) and :math:`\\sigma_j` the keypoint's sigma (:data:`COCO_SIGMAS`
for COCO's 17 keypoints). As COCO's ``COCOeval(iouType="keypoints")``: per image, predictions
in decreasing score (at most ``max_dets``) are matched greedily to the unmatched annotation of
highest OKS, when it is at least the threshold; over all images, precision at the 101 recall
levels 0, 0.01, …, 1 of the score-ranked predictions (made non-increasing from the right) is
averaged into AP at each threshold 0.50, 0.55, …, 0.95; AP is their mean, AP50 and AP75 two of
them. Annotated people need at least one labelled keypoint (COCO ignores the others).

References: COCO keypoint evaluation (cocodataset.org/#keypoints-eval); ``pycocotools``'s
``cocoeval.py``, against which ``tests/pose/test_oks.py`` checks these functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from eglpp.pose.skeleton import Skeleton

__all__ = [
    "COCO_SIGMAS",
    "OKS_THRESHOLDS",
    "OKSResult",
    "keypoint_sigmas",
    "oks",
    "oks_ap",
    "oks_summary",
]

#: COCO's per-keypoint sigmas (person_keypoints, cocoapi's ``kpt_oks_sigmas``), by name.
COCO_SIGMAS = {
    "nose": 0.026, "left_eye": 0.025, "right_eye": 0.025, "left_ear": 0.035, "right_ear": 0.035,
    "left_shoulder": 0.079, "right_shoulder": 0.079, "left_elbow": 0.072, "right_elbow": 0.072,
    "left_wrist": 0.062, "right_wrist": 0.062, "left_hip": 0.107, "right_hip": 0.107,
    "left_knee": 0.087, "right_knee": 0.087, "left_ankle": 0.089, "right_ankle": 0.089,
}  # fmt: skip

#: The OKS thresholds 0.50:0.05:0.95 (built as COCOeval builds them, float for float).
OKS_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
_RECALLS = np.linspace(0.0, 1.0, int(np.round((1.0 - 0.0) / 0.01)) + 1, endpoint=True)


class OKSResult(NamedTuple):
    ap: float  # mean of per_threshold
    ap50: float
    ap75: float
    per_threshold: np.ndarray  # (10,) AP at each of OKS_THRESHOLDS


def keypoint_sigmas(skeleton: Skeleton, given: Sequence[float] | None = None) -> np.ndarray | None:
    """(J,) the OKS sigmas of ``skeleton``'s keypoints: ``given`` (one positive number per
    keypoint, in the skeleton's order), else COCO's where every keypoint is one of COCO's 17
    (by name), else None (no OKS AP: other skeletons have no standard sigmas).

    >>> from eglpp.pose.skeleton import COCO17, LSP
    >>> keypoint_sigmas(COCO17)[:3], keypoint_sigmas(LSP)
    (array([0.026, 0.025, 0.025]), None)
    """
    if given is not None:
        sigmas = np.asarray(given, np.float64)
        if sigmas.shape != (skeleton.n_joints,) or not (np.isfinite(sigmas) & (sigmas > 0)).all():
            raise ValueError(
                f"OKS sigmas: need {skeleton.n_joints} positive numbers, one per keypoint of the "
                f"{skeleton.name} skeleton ({', '.join(skeleton.joints)}), got {list(given)}"
            )
        return sigmas
    if all(name in COCO_SIGMAS for name in skeleton.joints):
        return np.array([COCO_SIGMAS[name] for name in skeleton.joints])
    return None


def oks(
    pred: np.ndarray, gt: np.ndarray, visible: np.ndarray, areas: np.ndarray, sigmas: np.ndarray
) -> np.ndarray:
    """(D, G) the OKS of each of D predicted people (D, J, 2) with each of G annotated ones
    (G, J, 2), their labelled keypoints ``visible`` (G, J), ``areas`` (G,) and ``sigmas`` (J,).

    >>> gt = np.zeros((1, 1, 2)); pred = np.array([[[1.0, 0.0]]])
    >>> float(oks(pred, gt, np.ones((1, 1), bool), np.array([100.0]), np.array([0.05])).item())
    0.6065306597126334
    """
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    visible, areas = np.asarray(visible, bool), np.asarray(areas, np.float64)
    G, J = visible.shape
    if pred.ndim != 3 or pred.shape[1:] != (J, 2) or gt.shape != (G, J, 2):
        raise ValueError(f"oks: pred (D, {J}, 2) and gt ({G}, {J}, 2) expected, got "
                         f"{pred.shape} and {gt.shape}")  # fmt: skip
    if areas.shape != (G,) or np.shape(sigmas) != (J,):
        raise ValueError(f"oks: areas ({G},) and sigmas ({J},) expected, got "
                         f"{areas.shape} and {np.shape(sigmas)}")  # fmt: skip
    if not visible.any(axis=1).all():
        raise ValueError("oks: every annotated person needs a labelled keypoint")
    variances = (2.0 * np.asarray(sigmas, np.float64)) ** 2  # k_j^2
    d2 = ((pred[:, None] - gt[None]) ** 2).sum(-1)  # (D, G, J)
    e = d2 / variances / (areas[None, :, None] + np.spacing(1)) / 2
    return (np.exp(-e) * visible[None]).sum(-1) / visible.sum(-1)[None]


def _match(similarity: np.ndarray, threshold: float) -> np.ndarray:
    """(D,) whether each prediction (rows, in decreasing score) matches an annotation at
    ``threshold``: greedily, to the unmatched one of highest OKS (the last of equals)."""
    D, G = similarity.shape
    taken, matched = np.zeros(G, bool), np.zeros(D, bool)
    for d in range(D):
        best, m = min(threshold, 1 - 1e-10), -1
        for g in range(G):
            if not taken[g] and similarity[d, g] >= best:
                best, m = similarity[d, g], g
        if m >= 0:
            taken[m] = matched[d] = True
    return matched


def _average_precision(tp: np.ndarray, n_gt: int) -> float:
    """AP of true positives ``tp`` (in decreasing score) over ``n_gt`` annotations: precision
    at the 101 recall levels, each the best precision at that recall or beyond."""
    if len(tp) == 0:
        return 0.0
    tp_sum = np.cumsum(tp).astype(float)
    fp_sum = np.cumsum(~tp).astype(float)
    recall = tp_sum / n_gt
    precision = tp_sum / (tp_sum + fp_sum + np.spacing(1))
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # best at this recall or beyond
    at = np.searchsorted(recall, _RECALLS, side="left")
    return float(np.where(at < len(tp), precision[np.minimum(at, len(tp) - 1)], 0.0).mean())


def oks_ap(
    pred: np.ndarray,
    scores: np.ndarray,
    pred_images: np.ndarray,
    gt: np.ndarray,
    visible: np.ndarray,
    areas: np.ndarray,
    gt_images: np.ndarray,
    sigmas: np.ndarray,
    *,
    max_dets: int = 20,
) -> OKSResult:
    """COCO keypoint AP (module docstring) of predicted people ``pred`` (D, J, 2) with person
    ``scores`` (D,) on ``pred_images`` (D,) against annotated people ``gt`` (G, J, 2),
    ``visible`` (G, J), ``areas`` (G,) on ``gt_images`` (G,); images are any sortable ids.

    >>> gt = np.zeros((2, 1, 2)); pred = np.array([[[0.0, 0.0]], [[9.0, 0.0]]])
    >>> r = oks_ap(pred, np.array([0.9, 0.8]), np.array([0, 1]), gt, np.ones((2, 1), bool),
    ...            np.array([100.0, 100.0]), np.array([0, 1]), np.array([0.05]))
    >>> round(r.ap * 101, 9), round(r.ap50 * 101, 9)  # precision 1 at recalls 0, .01, …, .5
    (51.0, 51.0)
    """
    pred_images, gt_images = np.asarray(pred_images), np.asarray(gt_images)
    scores = np.asarray(scores, np.float64)
    if len(gt) == 0:
        raise ValueError("oks_ap: no annotated people")
    if scores.shape != (len(pred),) or pred_images.shape != (len(pred),):
        raise ValueError(
            f"oks_ap: scores and pred_images need one entry per prediction ({len(pred)})"
        )
    if gt_images.shape != (len(gt),):
        raise ValueError(f"oks_ap: gt_images needs one entry per annotated person ({len(gt)})")
    kept_scores, kept_tp = [], []
    for image in np.unique(np.concatenate([pred_images, gt_images])):
        d = np.flatnonzero(pred_images == image)
        d = d[np.argsort(-scores[d], kind="mergesort")][:max_dets]
        g = np.flatnonzero(gt_images == image)
        similarity = oks(np.asarray(pred)[d], np.asarray(gt)[g], np.asarray(visible)[g],
                         np.asarray(areas)[g], sigmas)  # fmt: skip
        kept_scores.append(scores[d])
        kept_tp.append(np.stack([_match(similarity, t) for t in OKS_THRESHOLDS], axis=1))
    order = np.argsort(-np.concatenate(kept_scores), kind="mergesort")
    tp = np.concatenate(kept_tp)[order]  # (D, T)
    per = np.array([_average_precision(tp[:, t], len(gt)) for t in range(len(OKS_THRESHOLDS))])
    return OKSResult(float(per.mean()), float(per[0]), float(per[5]), per)


def oks_summary(
    pred: np.ndarray,
    scores: np.ndarray,
    images: np.ndarray,
    gt: np.ndarray,
    visible: np.ndarray,
    areas: np.ndarray,
    sigmas: np.ndarray,
) -> dict | None:
    """``{"metric": "OKS AP", "mean": AP, "ap50", "ap75", "n"}`` of top-down predictions, one
    per annotated person (N, J, 2) with ``scores`` (N,), on ``images`` (N,); people without a
    labelled keypoint are left out (COCO ignores them). None where an area is unknown or no
    person is left.

    >>> gt = np.zeros((1, 1, 2)); one = np.ones((1, 1), bool)
    >>> s = oks_summary(gt, np.ones(1), np.zeros(1), gt, one, np.ones(1), np.array([0.05]))
    >>> round(s["ap75"], 12), s["n"]
    (1.0, 1)
    """
    areas = np.asarray(areas, np.float64)
    keep = np.asarray(visible, bool).any(axis=1)
    if not keep.any() or not np.isfinite(areas[keep]).all():
        return None
    r = oks_ap(pred[keep], scores[keep], images[keep], gt[keep], visible[keep], areas[keep],
               images[keep], sigmas)  # fmt: skip
    return {"metric": "OKS AP", "mean": r.ap, "ap50": r.ap50, "ap75": r.ap75,
            "n": int(keep.sum())}  # fmt: skip
