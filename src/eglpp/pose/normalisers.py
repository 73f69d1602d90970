"""Which PCK normaliser a skeleton and a dataset support: torso (``"pck"``), head box
(``"pckh"``) or the box around the annotated keypoints (``"pckb"``), and its values."""

from __future__ import annotations

import numpy as np

from eglpp.pose.metrics import bbox_size, pckh_mean_joints, torso_size
from eglpp.pose.skeleton import Skeleton

__all__ = ["METRICS", "default_metric", "metric_normaliser"]


#: PCK metrics by their normaliser: torso (``"pck"``), head box (``"pckh"``), person box
#: (``"pckb"``, :func:`bbox_size`), and each one's usual α and label.
METRICS = {"pck": ("torso", 0.2, "PCK"), "pckh": ("head", 0.5, "PCKh"),
           "pckb": ("bbox", 0.2, "PCK-bbox")}  # fmt: skip


def default_metric(skeleton: Skeleton) -> str:
    """``"pck"`` (torso) where ``skeleton`` has shoulders and hips, else ``"pckb"`` (box)."""
    return "pck" if skeleton.has_torso else "pckb"


def metric_normaliser(
    metric: str,
    skeleton: Skeleton,
    joints: np.ndarray,
    visible: np.ndarray,
    head_sizes: np.ndarray | None = None,
    torso_mode: str = "lsp",
) -> tuple[np.ndarray, list[int] | None]:
    """(normaliser (N,), the joints of the mean or None for all) of ``metric`` on ground truth
    ``joints`` (N, J, 2) / ``visible`` (N, J); ``"pckh"`` needs ``head_sizes`` (N,).

    Raises ValueError, naming the skeleton, where it lacks what the normaliser needs.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    if metric == "pck":
        if not skeleton.has_torso:
            raise ValueError(
                f"the torso normaliser needs a left_shoulder and a right_hip; the {skeleton.name} "
                f"skeleton ({', '.join(skeleton.joints)}) lacks one: use the bbox one"
            )
        return torso_size(joints, skeleton, mode=torso_mode, visible=visible), None
    if metric == "pckb":
        return bbox_size(joints, visible), None
    norm = np.full(len(joints), np.nan) if head_sizes is None else np.asarray(head_sizes, float)
    if not np.isfinite(norm).any():
        raise ValueError("the head normaliser (PCKh) needs head boxes; this dataset has none")
    return norm, pckh_mean_joints(skeleton)
