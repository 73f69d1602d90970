"""MPII Human Pose: the official ``.mat`` release and the common JSON conversion.

Official file (``mpii_human_pose_v1_u12_1.mat``): a struct ``RELEASE`` with ``annolist`` (per
image: ``image.name`` and the people ``annorect`` with ``objpos.x/y``, ``scale``, head box
``x1, y1, x2, y2`` and ``annopoints.point`` with ``id``, ``x``, ``y``, ``is_visible``),
``img_train`` (1 for training images, the only ones with joints) and ``single_person``. One person
is one item: every ``annorect`` of a training image that has at least one annotated point. Points
present → ``visible``; ``is_visible = 0`` → ``occluded`` (a missing ``is_visible`` counts as not
occluded).

JSON conversion (:mod:`eglpp.pose.datasets.mpii_json`, the format that Xiao et al.'s and
mmpose's loaders read): a list of ``{"image", "center", "scale", "joints": 16×[x, y],
"joints_vis": 16×0/1}``; ``joints_vis`` is the annotated flag (→ ``visible``), there is no
occlusion flag, ``center = [-1, -1]`` means unknown. A head box is read from ``head_box``/
``headbox``/``head_bbox`` where an entry has one, or from a ``gt_valid.mat``-style file's
``headboxes_src`` (2×2×N) given as ``head_boxes_mat``.

Both loaders: MATLAB 1-based pixels become 0-based (``one_based``); ``adjust_center_scale`` moves
the centre down by 15·scale px and enlarges the scale 1.25× (the usual correction of MPII's
``objpos``, which sits near the torso, so that crops hold the whole person); ``split`` is
``"all"``, or ``"train"``/``"valid"`` by the image names in ``valid_images`` (one per line, e.g.
Newell et al.'s validation split: every person of a named image is in ``valid``). Missing
joints get coordinates (0, 0).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from eglpp.pose.datasets.base import (
    AnnotationError,
    PoseAnnotations,
    check_image_files,
    read_mat,
)
from eglpp.pose.skeleton import MPII

__all__ = ["load_mpii_mat", "read_split_file", "split_people", "assemble"]


def read_split_file(path: str | os.PathLike) -> list[str]:
    """Image names, one per line (blank lines and ``#`` comments skipped; repeats kept)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"split file not found: {path}")
    names = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    names = [n for n in names if n]
    if not names:
        raise AnnotationError(f"{path}: split file names no images")
    return names


def _items(value) -> list:
    """A MATLAB struct array / cell read with ``squeeze_me`` as a list (empty -> [])."""
    if value is None:
        return []
    if isinstance(value, np.ndarray):
        return [] if value.size == 0 else list(value.ravel())
    return [value]


def _field(struct, name: str):
    """``struct.name``, or None where the field is absent or an empty array."""
    value = getattr(struct, name, None)
    if isinstance(value, np.ndarray) and value.size == 0:
        return None
    return value


def _number(value, what: str) -> float:
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    try:
        return float(np.asarray(value).reshape(()))
    except (TypeError, ValueError):
        raise AnnotationError(f"{what} is not a number: {value!r}") from None


def _is_zero_flag(flag) -> bool:
    """``is_visible`` = 0 (stored as a number or, in parts of the release, as a string)."""
    if isinstance(flag, str):
        return flag.strip() in ("0", "0.0")
    return bool(np.asarray(flag).reshape(()) == 0) if np.size(flag) == 1 else False


def _mat_person(rect, where: str, n_joints: int) -> dict | None:
    """Joints, flags, centre, scale, head box of one ``annorect``; None without points."""
    points = _items(_field(_field(rect, "annopoints"), "point"))
    if not points:
        return None
    joints = np.zeros((n_joints, 2))
    visible = np.zeros(n_joints, bool)
    occluded = np.zeros(n_joints, bool)
    for point in points:
        joint = int(_number(_field(point, "id"), f"{where}: field 'annopoints.point.id'"))
        if not 0 <= joint < n_joints:
            raise AnnotationError(f"{where}: field 'annopoints.point.id' = {joint}, not in 0..15")
        joints[joint] = [_number(_field(point, c), f"{where}: field 'point.{c}'") for c in "xy"]
        visible[joint] = True
        flag = _field(point, "is_visible")
        if flag is not None:
            occluded[joint] = _is_zero_flag(flag)
    objpos, scale = _field(rect, "objpos"), _field(rect, "scale")
    center = [np.nan, np.nan]
    if objpos is not None and _field(objpos, "x") is not None:
        center = [_number(_field(objpos, c), f"{where}: field 'objpos.{c}'") for c in "xy"]
    box = [_field(rect, c) for c in ("x1", "y1", "x2", "y2")]
    if any(b is None for b in box):
        box = [np.nan] * 4
    else:
        box = [_number(b, f"{where}: field 'x1'/'y1'/'x2'/'y2'") for b in box]
    return {
        "joints": joints,
        "visible": visible,
        "occluded": occluded,
        "center": center,
        "scale": np.nan if scale is None else _number(scale, f"{where}: field 'scale'"),
        "head_box": box,
    }


def split_people(
    names: list[str],
    known: set[str],
    split: str,
    valid_images: str | os.PathLike | None,
    flags: ArrayLike | None,
    source: str,
) -> np.ndarray:
    """Positions of the people in ``split`` (``flags``: per-person isValidation, or None)."""
    if split not in ("all", "train", "valid"):
        raise ValueError(f"split must be one of ['all', 'train', 'valid'], got {split!r}")
    if split == "all":
        keep = np.ones(len(names), bool)
    elif valid_images is not None:
        valid = set(read_split_file(valid_images))
        unknown = sorted(valid - known)
        if unknown:
            raise AnnotationError(
                f"{valid_images}: {len(unknown)} image name(s) not in {source}, first {unknown[0]}"
            )
        keep = np.array([n in valid for n in names], bool) == (split == "valid")
    elif flags is not None:
        keep = np.asarray(flags, bool) == (split == "valid")
    else:
        raise ValueError(
            f"{source}: split={split!r} needs valid_images (a file of image names) or an "
            "isValidation flag on every entry"
        )
    if not keep.any():
        raise AnnotationError(f"{source}: split {split!r} is empty")
    return np.flatnonzero(keep)


def assemble(
    people: list[dict],
    names: list[str],
    source: str,
    images_dir: str | os.PathLike | None,
    check_images: bool,
    one_based: bool,
    adjust: bool,
) -> dict:
    """Arrays of a PoseAnnotations from per-person dicts, with the coordinate conventions."""
    if not people:
        raise AnnotationError(f"{source}: no annotated people found")
    offset = 1.0 if one_based else 0.0
    visible = np.stack([p["visible"] for p in people])
    joints = np.where(visible[..., None], np.stack([p["joints"] for p in people]) - offset, 0.0)
    centers = np.array([p["center"] for p in people], dtype=np.float64)
    scales = np.array([p["scale"] for p in people], dtype=np.float64)
    scales[scales <= 0] = np.nan  # -1 marks an unknown scale in the JSON conversion
    centers[np.all(centers == -1, axis=1)] = np.nan
    if adjust:
        centers[:, 1] += 15 * scales
        scales *= 1.25
    head_boxes = np.array([p["head_box"] for p in people], dtype=np.float64) - offset
    folder = Path(images_dir) if images_dir is not None else Path(source).parent / "images"
    image_paths = [folder / n for n in names]
    if check_images:
        check_image_files(sorted(set(image_paths)), source)
    return dict(
        skeleton=MPII,
        joints=joints,
        visible=visible,
        occluded=np.stack([p["occluded"] for p in people]),
        image_paths=image_paths,
        centers=centers - offset,
        scales=scales,
        head_boxes=None if np.all(np.isnan(head_boxes)) else head_boxes,
        source=source,
    )


def load_mpii_mat(
    path: str | os.PathLike,
    split: str = "all",
    *,
    valid_images: str | os.PathLike | None = None,
    images_dir: str | os.PathLike | None = None,
    single_person_only: bool = False,
    check_images: bool = True,
    one_based: bool = True,
    adjust_center_scale: bool = True,
) -> PoseAnnotations:
    """Load the people of MPII's training images from the official ``.mat`` release.

    ``images_dir`` defaults to ``images/`` beside the file; ``single_person_only`` keeps the
    people listed in ``RELEASE.single_person``. See the module docstring for the rest.
    """
    path = Path(path)
    mat = read_mat(path, squeeze_me=True, struct_as_record=False)
    if "RELEASE" not in mat:
        found = ", ".join(k for k in mat if not k.startswith("__")) or "none"
        raise AnnotationError(f"{path}: no variable 'RELEASE' (variables found: {found})")
    release = mat["RELEASE"]
    for name in ("annolist", "img_train") + (("single_person",) if single_person_only else ()):
        if not hasattr(release, name):
            raise AnnotationError(f"{path}: struct 'RELEASE' has no field '{name}'")
    annolist = _items(release.annolist)
    img_train = np.atleast_1d(np.asarray(release.img_train)).ravel()
    if len(img_train) != len(annolist):
        raise AnnotationError(
            f"{path}: field 'RELEASE.img_train' has {len(img_train)} entries, "
            f"'RELEASE.annolist' has {len(annolist)}"
        )
    singles = _items(release.single_person) if single_person_only else None
    people, names, known = [], [], set()
    for i, entry in enumerate(annolist):
        if img_train[i] != 1:
            continue
        name = _field(_field(entry, "image"), "name")
        if not isinstance(name, str):
            raise AnnotationError(f"{path}: field 'annolist({i + 1}).image.name' is missing")
        known.add(name)
        chosen = None if singles is None else set(np.atleast_1d(singles[i]).astype(int).tolist())
        for r, rect in enumerate(_items(_field(entry, "annorect")), start=1):
            if chosen is not None and r not in chosen:
                continue
            person = _mat_person(rect, f"{path}: image {name} person {r}", MPII.n_joints)
            if person is not None:
                people.append(person)
                names.append(name)
    fields = assemble(
        people, names, str(path), images_dir, check_images, one_based, adjust_center_scale
    )
    return PoseAnnotations(**fields).subset(
        split_people(names, known, split, valid_images, None, str(path))
    )
