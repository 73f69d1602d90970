"""MPII Human Pose in the common JSON conversion (see :mod:`eglpp.pose.datasets.mpii`).

A list of ``{"image", "center", "scale", "joints": 16×[x, y], "joints_vis": 16×0/1}``, one entry
per person, as written by the converters that Xiao et al.'s and mmpose's MPII loaders read;
``joints_vis`` is the annotated flag. Head boxes come from an entry's ``head_box``/``headbox``/
``head_bbox`` or from a ``gt_valid.mat``-style ``headboxes_src`` array.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from eglpp.pose.datasets.base import AnnotationError, PoseAnnotations, read_mat
from eglpp.pose.datasets.mpii import assemble, split_people
from eglpp.pose.skeleton import MPII

__all__ = ["load_mpii_json"]

_HEAD_BOX_KEYS = ("head_box", "headbox", "head_bbox")


def _json_vector(entry: dict, key: str, shape: tuple[int, ...], where: str) -> np.ndarray:
    try:
        value = np.asarray(entry[key], dtype=np.float64)
    except (TypeError, ValueError):
        raise AnnotationError(f"{where}: field '{key}' is not numeric") from None
    if value.size == int(np.prod(shape)) and value.shape != shape and len(shape) == 1:
        value = value.reshape(shape)  # e.g. a head box written as [[x1, y1], [x2, y2]]
    if value.shape != shape:
        raise AnnotationError(f"{where}: field '{key}' has shape {value.shape}, expected {shape}")
    if not np.all(np.isfinite(value)):
        raise AnnotationError(f"{where}: field '{key}' holds non-finite values")
    return value


def _json_person(entry, where: str, n_joints: int) -> tuple[str, dict, float | None]:
    """Image name, person dict and isValidation flag (None if absent) of one JSON entry."""
    if not isinstance(entry, dict):
        raise AnnotationError(f"{where}: expected an object, got {type(entry).__name__}")
    for key in ("image", "joints", "joints_vis"):
        if key not in entry:
            raise AnnotationError(f"{where}: no field '{key}'")
    if not isinstance(entry["image"], str) or not entry["image"]:
        raise AnnotationError(f"{where}: field 'image' must be an image name")
    joints = _json_vector(entry, "joints", (n_joints, 2), where)
    visible = _json_vector(entry, "joints_vis", (n_joints,), where) > 0
    center = [np.nan, np.nan]
    if entry.get("center") is not None:
        center = list(_json_vector(entry, "center", (2,), where))
    scale = np.nan
    if entry.get("scale") is not None:
        scale = float(_json_vector(entry, "scale", (), where))
    head_box = [np.nan] * 4
    for key in _HEAD_BOX_KEYS:
        if entry.get(key) is not None:
            head_box = list(_json_vector(entry, key, (4,), where))
    person = dict(
        joints=joints,
        visible=visible,
        occluded=np.zeros(n_joints, bool),
        center=center,
        scale=scale,
        head_box=head_box,
    )
    flag = entry.get("isValidation")
    if flag is not None and not (isinstance(flag, (bool, int, float)) and flag in (0, 1)):
        raise AnnotationError(f"{where}: field 'isValidation' must be 0 or 1, got {flag!r:.40}")
    return entry["image"], person, flag


def _head_boxes_from_mat(path: str | os.PathLike, n: int) -> np.ndarray:
    """(N, 4) x1, y1, x2, y2 from ``headboxes_src`` (2 corners × 2 coordinates × N)."""
    mat = read_mat(path)
    if "headboxes_src" not in mat:
        raise AnnotationError(f"{path}: no variable 'headboxes_src'")
    boxes = np.asarray(mat["headboxes_src"], dtype=np.float64)
    if boxes.shape != (2, 2, n):
        raise AnnotationError(
            f"{path}: variable 'headboxes_src' has shape {boxes.shape}, expected (2, 2, {n}) "
            "(one head box per JSON entry)"
        )
    return boxes.transpose(2, 0, 1).reshape(n, 4)


def load_mpii_json(
    path: str | os.PathLike,
    split: str = "all",
    *,
    valid_images: str | os.PathLike | None = None,
    images_dir: str | os.PathLike | None = None,
    head_boxes_mat: str | os.PathLike | None = None,
    check_images: bool = True,
    one_based: bool = True,
    adjust_center_scale: bool = True,
) -> PoseAnnotations:
    """Load MPII people from the common JSON conversion (one entry per person).

    Without ``valid_images``, ``split="train"``/``"valid"`` use the entries' ``isValidation``
    flags where every entry has one. See the module docstring for the rest.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file not found: {path}")
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise AnnotationError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(data, list):
        raise AnnotationError(f"{path}: expected a list of people, got {type(data).__name__}")
    names, people, flags = [], [], []
    for k, entry in enumerate(data):
        name, person, flag = _json_person(entry, f"{path}: entry {k}", MPII.n_joints)
        names.append(name)
        people.append(person)
        flags.append(flag)
    if head_boxes_mat is not None:
        for person, box in zip(
            people, _head_boxes_from_mat(head_boxes_mat, len(people)), strict=True
        ):
            person["head_box"] = list(box)
    fields = assemble(
        people, names, str(path), images_dir, check_images, one_based, adjust_center_scale
    )
    has_flags = people and all(f is not None for f in flags)
    return PoseAnnotations(**fields).subset(
        split_people(
            names, set(names), split, valid_images, flags if has_flags else None, str(path)
        )
    )
