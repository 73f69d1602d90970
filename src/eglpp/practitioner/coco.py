"""COCO keypoints JSON written for annotation tools (CVAT, Label Studio, …): a skeleton's
category, the selection's entries and documents. Reading and validating a file, its
conventions (pixel indices, boxes, ``v``) and the skeleton matching are the pose library's
(:mod:`eglpp.pose.datasets.coco`, :mod:`eglpp.pose.datasets.coco_skeleton`), re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from eglpp.pose.datasets.coco import (
    BOX_SCALE,
    CocoFile,
    bbox_to_crop,
    coco_to_annotations,
    image_root,
    read_coco,
)
from eglpp.pose.datasets.coco_skeleton import joint_of, match_skeleton
from eglpp.pose.skeleton import BUILT_IN, Skeleton

__all__ = [
    "CocoFile",
    "image_root",
    "match_skeleton",
    "joint_of",
    "read_coco",
    "coco_to_annotations",
    "coco_category",
    "bbox_to_crop",
    "crop_to_bbox",
    "keypoint_entry",
    "coco_document",
    "BOX_SCALE",
]


def coco_category(skeleton: Skeleton) -> dict:
    """The COCO ``categories`` entry of a skeleton (1-based ``skeleton`` limb list)."""
    person = skeleton.name in BUILT_IN
    return {
        "id": 1,
        "name": "person" if person else skeleton.name,
        "supercategory": "person" if person else skeleton.name,
        "keypoints": list(skeleton.joints),
        "skeleton": [[a + 1, b + 1] for a, b in skeleton.limbs],
    }


def crop_to_bbox(
    center: Sequence[float],
    extent: float | Sequence[float],
    box_scale: float = BOX_SCALE,
    image_size: tuple[int, int] | None = None,
) -> list[float]:
    """The COCO box [x, y, w, h] that :func:`bbox_to_crop` turns back into this crop (a crop
    ``extent`` px square, or (w, h)), clipped to ``image_size`` (width, height) where given, so
    that a box never lies outside its image."""
    w, h = np.broadcast_to(np.asarray(extent, np.float64), (2,)) / box_scale
    cx, cy = float(center[0]) + 0.5, float(center[1]) + 0.5
    x0, y0, x1, y1 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
    if image_size is not None:
        x0, x1 = max(x0, 0.0), min(x1, float(image_size[0]))
        y0, y1 = max(y0, 0.0), min(y1, float(image_size[1]))
    return [x0, y0, x1 - x0, y1 - y0]


def keypoint_entry(
    ann_id: int,
    image_id: int,
    joints: np.ndarray,
    flags: np.ndarray,
    bbox: list[float] | None,
    **extra: Any,
) -> dict:
    """A COCO annotation: joints (J, 2) pixel indices and flags (J,) v in {0, 1, 2}, in the
    category's joint order; unlabelled joints are written as (0, 0, 0)."""
    flags = np.asarray(flags, np.int64)
    kp = np.zeros((len(flags), 3))
    kp[:, :2] = np.where(flags[:, None] > 0, np.asarray(joints, np.float64), 0.0)
    kp[:, 2] = flags
    entry = {
        "id": int(ann_id),
        "image_id": int(image_id),
        "category_id": 1,
        "keypoints": [round(float(v), 2) for v in kp.ravel()],
        "num_keypoints": int((flags > 0).sum()),
        "iscrowd": 0,
    }
    if bbox is not None:
        entry["bbox"] = [round(float(v), 2) for v in bbox]
        entry["area"] = round(float(bbox[2] * bbox[3]), 2)
    return {**entry, **extra}


def coco_document(
    images: list[dict], annotations: list[dict], skeleton: Skeleton, info: dict | None = None
) -> dict:
    """A COCO keypoints file (the dict to write as JSON) in ``skeleton``'s joint order."""
    return {
        "info": {"description": "written by eglpp", **(info or {})},
        "images": images,
        "annotations": annotations,
        "categories": [coco_category(skeleton)],
    }
