"""PCK@α (LSP, torso-normalised) and PCKh@α (MPII, head-normalised), per joint and mean.

A predicted joint is correct when its distance to the ground truth is at most α times the
example's normaliser:

.. math:: \\mathrm{PCK}_j = \\frac{\\sum_n v_{nj}\\,
    [\\lVert \\hat p_{nj} - p_{nj} \\rVert \\le \\alpha\\, d_n]}{\\sum_n v_{nj}}

where :math:`v_{nj}` marks annotated joints (only they count) and :math:`d_n` is

- PCKh (MPII): ``head_size`` = 0.6 × the head-box diagonal (the MPII evaluation tool);
  ``factor=1.0`` reproduces the EGL++ paper's code (the plain diagonal);
- PCK (LSP): ``torso_size`` = ‖left shoulder − right hip‖ (``mode="lsp"``);
  ``mode="max_diagonal"`` reproduces the paper's code (the longer of the two torso diagonals);
- PCK with a box normaliser (any skeleton, e.g. one without shoulders and hips): ``bbox_size`` =
  max(w, h) of the tight box around the example's annotated keypoints.

The mean is pooled over the chosen joints (hits / annotated, as the MPII tool weights joints by
their counts) or, with ``average="joint"``, the plain mean of the per-joint values. For MPII's
PCKh the mean leaves out pelvis and thorax: pass ``mean_joints=pckh_mean_joints(MPII)``.
Examples whose normaliser is not finite (no head box, a missing torso joint) are left out.

The functions are pure (``_pck_update`` → ``_pck_compute``, torchmetrics style); ``PCKMetric``
accumulates hits and counts over batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from eglpp.pose.skeleton import Skeleton
from eglpp.significance import pooled_se

__all__ = [
    "PCKResult",
    "PCKMetric",
    "pck",
    "pck_hits",
    "pck_se",
    "torso_size",
    "bbox_size",
    "head_size",
    "pckh_mean_joints",
    "mean_pose",
]


class PCKResult(NamedTuple):
    per_joint: np.ndarray  # (J,) fraction correct per joint, NaN where no joint counted
    mean: float  # over the chosen joints
    counts: np.ndarray  # (J,) number of joints that counted


def _pck_update(
    pred: np.ndarray, gt: np.ndarray, visible: np.ndarray, normaliser: np.ndarray, alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """Hits and counts per joint, each (J,) int64, for one batch."""
    hit, counted = pck_hits(pred, gt, visible, normaliser, alpha)
    return hit.sum(axis=0), counted.sum(axis=0)


def pck_hits(
    pred: np.ndarray, gt: np.ndarray, visible: np.ndarray, normaliser: np.ndarray, alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """(hit, counted), each (N, J) bool: the joints of each example that count (annotated, with
    a finite normaliser) and those among them within ``alpha × normaliser`` (see :func:`pck`)."""
    pred, gt = np.asarray(pred, dtype=np.float64), np.asarray(gt, dtype=np.float64)
    visible, normaliser = np.asarray(visible, dtype=bool), np.asarray(normaliser, np.float64)
    if pred.ndim != 3 or pred.shape[-1] != 2 or gt.shape != pred.shape:
        raise ValueError(
            f"pred and gt must both have shape (N, J, 2), got {pred.shape} and {gt.shape}"
        )
    N, J, _ = pred.shape
    if visible.shape != (N, J):
        raise ValueError(f"visible must have shape {(N, J)}, got {visible.shape}")
    if normaliser.shape != (N,):
        raise ValueError(f"normaliser must have shape {(N,)}, got {normaliser.shape}")
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    counted = visible & (np.isfinite(normaliser) & (normaliser > 0))[:, None]  # (N, J)
    dist = np.linalg.norm(pred - gt, axis=-1)  # (N, J)
    hit = counted & (dist <= alpha * np.where(counted, normaliser[:, None], 0.0))
    return hit, counted


def _pck_compute(
    hits: np.ndarray, counts: np.ndarray, mean_joints: Sequence[int] | None, average: str
) -> PCKResult:
    with np.errstate(invalid="ignore", divide="ignore"):
        per_joint = np.where(counts > 0, hits / np.maximum(counts, 1), np.nan)
    sel = np.arange(len(counts)) if mean_joints is None else np.asarray(mean_joints, dtype=int)
    if average == "pooled":
        total = counts[sel].sum()
        mean = float(hits[sel].sum() / total) if total > 0 else float("nan")
    elif average == "joint":
        vals = per_joint[sel]
        mean = float(np.nanmean(vals)) if np.isfinite(vals).any() else float("nan")
    else:
        raise ValueError(f"average must be 'pooled' or 'joint', got {average!r}")
    return PCKResult(per_joint=per_joint, mean=mean, counts=counts.astype(np.int64))


def pck(
    pred: np.ndarray,
    gt: np.ndarray,
    visible: np.ndarray,
    normaliser: np.ndarray,
    alpha: float,
    *,
    mean_joints: Sequence[int] | None = None,
    average: str = "pooled",
) -> PCKResult:
    """Percentage of correct keypoints at threshold ``alpha × normaliser``.

    Parameters
    ----------
    pred, gt : array (N, J, 2)
        Predicted and ground-truth joints, same pixel units as ``normaliser``.
    visible : array (N, J) bool
        Annotated joints; only these count.
    normaliser : array (N,)
        Per-example length (``torso_size`` or ``head_size``); non-finite → example left out.
    alpha : float
        0.2 for LSP's PCK, 0.5 for MPII's PCKh.
    mean_joints : sequence of int, optional
        Joints averaged into ``mean`` (default all); per_joint always covers all J.
    average : {"pooled", "joint"}
        Pooled hits / counts over ``mean_joints`` (default), or the mean of per-joint values.

    Returns
    -------
    PCKResult(per_joint (J,), mean, counts (J,))

    Examples
    --------
    >>> gt = np.zeros((2, 1, 2)); pred = np.array([[[1.0, 0.0]], [[3.0, 0.0]]])
    >>> pck(pred, gt, np.ones((2, 1), bool), np.array([10.0, 10.0]), alpha=0.2).mean
    0.5
    """
    hits, counts = _pck_update(pred, gt, visible, normaliser, alpha)
    return _pck_compute(hits, counts, mean_joints, average)


def torso_size(
    gt: np.ndarray,
    skeleton: Skeleton,
    mode: str = "lsp",
    visible: np.ndarray | None = None,
) -> np.ndarray:
    """Per-example torso length (N,) for PCK.

    ``mode="lsp"``: ‖left shoulder − right hip‖ (the LSP convention); ``mode="max_diagonal"``:
    max(‖left shoulder − right hip‖, ‖right shoulder − left hip‖) (the EGL++ paper's code).
    Where ``visible`` is given, a diagonal with an unannotated end is NaN (ignored by the max
    when the other one exists).
    """
    gt = np.asarray(gt, dtype=np.float64)
    if gt.ndim != 3 or gt.shape[1:] != (skeleton.n_joints, 2):
        raise ValueError(
            f"gt must have shape (N, {skeleton.n_joints}, 2) for the {skeleton.name} skeleton, "
            f"got {gt.shape}"
        )

    def diagonal(a: str, b: str) -> np.ndarray:
        a, b = skeleton.index(a), skeleton.index(b)
        d = np.linalg.norm(gt[:, a] - gt[:, b], axis=-1)
        if visible is not None:
            vis = np.asarray(visible, dtype=bool)
            d = np.where(vis[:, a] & vis[:, b], d, np.nan)
        return d

    if mode == "lsp":
        return diagonal("left_shoulder", "right_hip")
    if mode == "max_diagonal":
        both = np.stack(
            [diagonal("left_shoulder", "right_hip"), diagonal("right_shoulder", "left_hip")]
        )  # (2, N)
        with np.errstate(invalid="ignore"):
            out = np.fmax(both[0], both[1])  # NaN only where both are NaN
        return out
    raise ValueError(f"torso_size mode must be 'lsp' or 'max_diagonal', got {mode!r}")


def bbox_size(gt: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Per-example box normaliser (N,): the longer side, max(w, h), of the tight box around the
    annotated keypoints (the same pixel units as ``gt``); NaN with fewer than two annotated.

    >>> bbox_size(np.array([[[0.0, 0.0], [3.0, 8.0], [50.0, 50.0]]]), np.array([[1, 1, 0]]))
    array([8.])
    """
    gt, vis = np.asarray(gt, np.float64), np.asarray(visible, bool)
    if gt.ndim != 3 or gt.shape[-1] != 2 or vis.shape != gt.shape[:2]:
        raise ValueError(f"gt (N, J, 2) and visible (N, J) expected, got {gt.shape}, {vis.shape}")
    lo = np.where(vis[..., None], gt, np.inf).min(axis=1)  # (N, 2)
    hi = np.where(vis[..., None], gt, -np.inf).max(axis=1)
    with np.errstate(invalid="ignore"):
        side = (hi - lo).max(axis=1)
    return np.where(vis.sum(axis=1) >= 2, side, np.nan)


def mean_pose(joints: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """(J, 2) the mean of each joint over the examples where it is annotated (0 where never):
    the mean-pose baseline predicts it for every image, and a model no better than that has
    learnt nothing about the image.

    >>> mean_pose(np.array([[[0.0, 2.0]], [[4.0, 6.0]]]), np.array([[True], [False]]))
    array([[0., 2.]])
    """
    joints, visible = np.asarray(joints, np.float64), np.asarray(visible, bool)
    total = (joints * visible[..., None]).sum(0)
    return total / np.maximum(visible.sum(0), 1)[:, None]


def head_size(head_boxes: np.ndarray, factor: float = 0.6) -> np.ndarray:
    """PCKh normaliser (N,): ``factor`` × the diagonal of each head box (x1, y1, x2, y2).

    ``factor=0.6`` is the MPII evaluation tool's; ``factor=1.0`` the EGL++ paper's code.
    """
    boxes = np.asarray(head_boxes, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"head_boxes must have shape (N, 4) as x1, y1, x2, y2, got {boxes.shape}")
    return factor * np.hypot(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])


def pckh_mean_joints(skeleton: Skeleton) -> list[int]:
    """Joints averaged into MPII's PCKh: all but pelvis and thorax (where the skeleton has them)."""
    excluded = {"pelvis", "thorax"}
    return [i for i, name in enumerate(skeleton.joints) if name not in excluded]


class PCKMetric:
    """Accumulating PCK: ``update`` per batch, ``compute`` over everything seen, ``reset``.

    Examples
    --------
    >>> metric = PCKMetric(alpha=0.5)
    >>> gt = np.zeros((1, 2, 2))
    >>> metric.update(gt + 1.0, gt, np.ones((1, 2), bool), np.array([4.0]))
    >>> metric.update(gt + 3.0, gt, np.ones((1, 2), bool), np.array([4.0]))
    >>> metric.compute().mean
    0.5
    """

    def __init__(
        self,
        alpha: float,
        *,
        mean_joints: Sequence[int] | None = None,
        average: str = "pooled",
    ):
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        if average not in ("pooled", "joint"):
            raise ValueError(f"average must be 'pooled' or 'joint', got {average!r}")
        self.alpha, self.mean_joints, self.average = alpha, mean_joints, average
        self.reset()

    def reset(self) -> None:
        self.hits: np.ndarray | None = None
        self.counts: np.ndarray | None = None

    def update(
        self, pred: np.ndarray, gt: np.ndarray, visible: np.ndarray, normaliser: np.ndarray
    ) -> None:
        hits, counts = _pck_update(pred, gt, visible, normaliser, self.alpha)
        if self.hits is None:
            self.hits, self.counts = hits, counts
        elif hits.shape != self.hits.shape:
            raise ValueError(
                f"PCKMetric.update: {hits.shape[0]} joints, earlier batches had "
                f"{self.hits.shape[0]}"
            )
        else:
            self.hits, self.counts = self.hits + hits, self.counts + counts

    def compute(self) -> PCKResult:
        if self.hits is None:
            raise RuntimeError("PCKMetric.compute called before any update")
        return _pck_compute(self.hits, self.counts, self.mean_joints, self.average)


def pck_se(
    pred: np.ndarray,
    gt: np.ndarray,
    visible: np.ndarray,
    normaliser: np.ndarray,
    alpha: float,
    *,
    mean_joints: Sequence[int] | None = None,
) -> tuple[float, int]:
    """(standard error, joints counted) of :func:`pck`'s pooled mean: examples independent,
    their joints not (:func:`~eglpp.significance.pooled_se`)."""
    hit, counted = pck_hits(pred, gt, visible, normaliser, alpha)
    if mean_joints is not None:
        sel = np.asarray(mean_joints, dtype=int)
        hit, counted = hit[:, sel], counted[:, sel]
    hits, counts = hit.sum(axis=1), counted.sum(axis=1)
    return pooled_se(hits, counts), int(counts.sum())
