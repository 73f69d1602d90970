"""COCO keypoints JSON, the format annotation tools (CVAT, Label Studio, …) and COCO itself use.

A file holds ``images`` (``id``, ``file_name``, optional ``width``/``height``), ``annotations``
(one person each: ``id``, ``image_id``, ``category_id``, ``keypoints`` = J × (x, y, v), optional
``bbox`` = [x, y, w, h] and ``area``) and ``categories`` whose first entry names the J
keypoints. The names are matched to a built-in skeleton, the 14 LSP, 16 MPII or 17 COCO joints
(case, spaces, hyphens, ``l_``/``r_`` prefixes and a few aliases like ``head`` → ``head_top`` do
not matter), so a tool's joint order need not be ours. Any other keypoint set is a skeleton of
its own, in the file's order: its limbs are the category's ``skeleton`` (1-based pairs, as COCO
writes them), its flip pairs the ``left_X``/``right_X`` names
(:func:`eglpp.pose.skeleton.skeleton_from_keypoints`). A list that misses a built-in skeleton
by one or two names is refused as a likely typo.

Conventions: keypoint coordinates are pixel indices (a joint at x = 3 is the centre of column 3:
the contracts' convention and detectron2's reading of COCO keypoints); ``bbox`` is in continuous
coordinates (pixel i covers [i, i + 1]), so its centre in pixel indices is x + w/2 − 0.5. A box
becomes the crop of the box · ``box_scale`` around its centre, grown to the input's aspect ratio
W / H (for a square input: the square of side ``box_scale`` · max(w, h)); without a box the crop
follows the annotated joints (``eglpp.pose.datasets.transforms.person_box``). ``v`` = 0: not
labelled, 1: labelled but occluded, 2: labelled and visible. A person's ``area`` (OKS's scale)
is its ``area``, else its box's w × h. Relative ``file_name`` values are resolved against
``images_root`` (default: the JSON file's folder).

This module reads (the pose library's, so that ``eglpp run --dataset coco:FILE`` can);
:mod:`eglpp.practitioner.coco` writes, and re-exports these names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eglpp.io import read_json
from eglpp.pose.datasets.base import AnnotationError, PoseAnnotations
from eglpp.pose.datasets.coco_skeleton import category_limbs, match_skeleton
from eglpp.pose.skeleton import Skeleton

__all__ = [
    "BOX_SCALE",
    "CocoFile",
    "bbox_to_crop",
    "coco_to_annotations",
    "image_root",
    "read_coco",
]

BOX_SCALE = 1.25  # crop side / longer side of a person box (CropAugment.bbox_scale)


def bbox_to_crop(
    bbox: Sequence[float], box_scale: float = BOX_SCALE
) -> tuple[np.ndarray, np.ndarray]:
    """(centre (2,) in pixel indices, scale (w, h) in 200-px units) of a COCO box's crop: the
    box · ``box_scale``, which the crop grows to the input's aspect ratio
    (:func:`~eglpp.pose.datasets.preprocess.fit_aspect`)."""
    x, y, w, h = (float(v) for v in bbox)
    return np.array([x + w / 2 - 0.5, y + h / 2 - 0.5]), box_scale * np.array([w, h]) / 200.0


@dataclass(frozen=True)
class CocoFile:
    """A validated COCO keypoints file: its raw lists and the matched skeleton."""

    path: Path
    images: list[dict]
    annotations: list[dict]
    category: dict
    skeleton: Skeleton
    order: np.ndarray  # (J,) skeleton position of each of the file's keypoints
    info: dict  # the file's "info" (``images_root`` there resolves relative file names)

    def image_by_id(self) -> dict[int, dict]:
        return {im["id"]: im for im in self.images}


_KINDS = {int: "an integer", str: "a string", list: "a list"}


def _kind_name(kind: type | tuple[type, ...]) -> str:
    """``an integer``, ``a string or an integer``: what a field must be, in words."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(_KINDS.get(k, k.__name__) for k in kinds)


def image_root(coco: CocoFile, images_root: str | Path | None = None) -> Path:
    """The folder ``coco``'s relative ``file_name`` values resolve against: ``images_root``
    (a flag: relative to the working directory), else ``info.images_root`` (relative to the
    file's folder), else the file's folder.

    >>> from eglpp.pose.skeleton import LSP
    >>> def coco(info):
    ...     return CocoFile(Path("data/labelled.json"), [], [], {}, LSP, np.arange(14), info)
    >>> image_root(coco({})).as_posix(), image_root(coco({}), "photos").as_posix()
    ('data', 'photos')
    >>> image_root(coco({"images_root": "img"})).as_posix()
    'data/img'
    """
    if images_root is not None:
        return Path(images_root)
    root = Path(coco.info.get("images_root") or ".")
    return root if root.is_absolute() else coco.path.parent / root


def _need(entry: dict, key: str, where: str, kind: type | tuple[type, ...]):
    if not isinstance(entry, dict) or key not in entry:
        raise AnnotationError(f"{where}: field '{key}' is missing")
    value = entry[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise AnnotationError(
            f"{where}: field '{key}' must be {_kind_name(kind)}, got {value!r:.60}"
        )
    return value


def _numbers(values: list, where: str, key: str) -> np.ndarray:
    """``values`` as float64; a string, null or nested list in it raises AnnotationError."""
    bad = [v for v in values if not isinstance(v, (int, float)) or isinstance(v, bool)]
    if bad:
        raise AnnotationError(f"{where}: '{key}' must hold numbers only, found {bad[0]!r:.40}")
    return np.asarray(values, dtype=np.float64)


def read_coco(
    path: str | Path, *, require_keypoints: bool = True, known: Sequence[Skeleton] = ()
) -> CocoFile:
    """Read and validate a COCO keypoints file; errors name the file, the entry and the field.
    Its keypoint names are matched to ``known`` skeletons (e.g. the labelled set's) first.

    Checks: the three lists; ``categories[0].keypoints`` names a skeleton (unique names, not a
    near miss of a built-in one) and its ``skeleton`` limbs are 1-based keypoints; unique image
    and annotation ids; every annotation's ``image_id`` exists, its ``category_id`` is the keypoint
    category, ``keypoints`` has 3·J finite numbers with v in {0, 1, 2} and, with
    ``require_keypoints``, at least one labelled joint; ``bbox`` (if any) has w, h > 0.
    """

    path = Path(path)
    data = read_json(path)
    src = str(path)
    _check_lists(data, src)
    category = data["categories"][0]
    names = _need(category, "keypoints", f"{src}: categories[0]", list)
    skeleton, order = match_skeleton(
        names,
        src,
        category_limbs(category, len(names), src),
        str(category.get("name") or "custom"),
        known,
    )
    images = data["images"]
    ids = _image_ids(images, src)
    ann_ids, cat_id = set(), category.get("id", 1)
    for k, ann in enumerate(data["annotations"]):
        where = f"{src}: annotations[{k}]"
        aid = _need(ann, "id", where, int)
        if aid in ann_ids:
            raise AnnotationError(f"{where}: duplicate annotation id {aid}")
        ann_ids.add(aid)
        _check_annotation(ann, f"{where} (id {aid})", ids, cat_id, len(names), require_keypoints)
    info = data.get("info") if isinstance(data.get("info"), dict) else {}
    return CocoFile(path, images, data["annotations"], category, skeleton, order, info)


def _check_lists(data: object, src: str) -> None:
    """The top level is an object with the lists ``images``, ``annotations`` and a non-empty
    ``categories``."""
    if not isinstance(data, dict):
        raise AnnotationError(f"{src}: not a COCO file (top level must be an object)")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise AnnotationError(f"{src}: not a COCO keypoints file (no '{key}' list)")
    if not data["categories"]:
        raise AnnotationError(f"{src}: 'categories' is empty (need one with 'keypoints')")


def _image_ids(images: list, src: str) -> set[int]:
    """The ids of ``images``, each entry checked for an int ``id`` (unique) and a ``file_name``."""
    ids = set()
    for k, im in enumerate(images):
        where = f"{src}: images[{k}]"
        iid = _need(im, "id", where, int)
        _need(im, "file_name", where, str)
        if iid in ids:
            raise AnnotationError(f"{where}: duplicate image id {iid}")
        ids.add(iid)
    return ids


def _check_annotation(
    ann: dict, where: str, ids: set[int], cat_id: object, J: int, require_keypoints: bool
) -> None:
    """One annotation's image, category, 3·J keypoints (labelled if required) and bbox."""
    if _need(ann, "image_id", where, int) not in ids:
        raise AnnotationError(f"{where}: image_id {ann['image_id']} is not in 'images'")
    if ann.get("category_id", cat_id) != cat_id:
        raise AnnotationError(
            f"{where}: category_id {ann['category_id']} is not the keypoint category {cat_id}"
        )
    kp = _need(ann, "keypoints", where, list)
    if len(kp) != 3 * J:
        raise AnnotationError(
            f"{where}: field 'keypoints' has {len(kp)} values, expected 3 × {J} "
            f"(x, y, v for each of the {J} joints of categories[0])"
        )
    arr = _numbers(kp, where, "keypoints").reshape(J, 3)
    if not np.isfinite(arr).all() or not np.isin(arr[:, 2], (0, 1, 2)).all():
        raise AnnotationError(f"{where}: 'keypoints' must be finite with v in {{0, 1, 2}}")
    if require_keypoints and not (arr[:, 2] > 0).any():
        raise AnnotationError(
            f"{where}: missing keypoints: no joint is labelled (all v = 0) on image "
            f"{ann['image_id']}; label it or delete the annotation"
        )
    if "bbox" in ann:
        box = ann["bbox"]
        if not (isinstance(box, list) and len(box) == 4):
            raise AnnotationError(f"{where}: 'bbox' must be [x, y, w, h], got {box!r:.60}")
        x, y, w, h = _numbers(box, where, "bbox")
        if not (np.isfinite([x, y, w, h]).all() and w > 0 and h > 0):
            raise AnnotationError(f"{where}: 'bbox' must be [x, y, w, h] with w, h > 0")


def coco_to_annotations(
    coco: CocoFile,
    *,
    images_root: str | Path | None = None,
    box_scale: float = BOX_SCALE,
) -> PoseAnnotations:
    """One :class:`PoseAnnotations` entry per annotation, joints in the matched skeleton.

    Relative ``file_name`` values resolve against :func:`image_root`.
    """
    root = image_root(coco, images_root)
    by_id = coco.image_by_id()
    J = coco.skeleton.n_joints
    n = len(coco.annotations)
    joints = np.zeros((n, J, 2), np.float32)
    flags = np.zeros((n, J), np.int64)
    centers = np.full((n, 2), np.nan, np.float32)
    scales = np.full((n, 2), np.nan, np.float32)  # (w, h) of each box
    areas = np.array([_area(ann) for ann in coco.annotations], np.float32).reshape(n)
    paths = []
    for k, ann in enumerate(coco.annotations):
        kp = np.asarray(ann["keypoints"], np.float64).reshape(J, 3)
        joints[k, coco.order] = kp[:, :2]
        flags[k, coco.order] = kp[:, 2]
        if "bbox" in ann:
            centers[k], scales[k] = bbox_to_crop(ann["bbox"], box_scale)
        paths.append(root / by_id[ann["image_id"]]["file_name"])
    visible = flags > 0
    return PoseAnnotations(
        skeleton=coco.skeleton,
        joints=np.where(visible[..., None], joints, 0.0),
        visible=visible,
        occluded=flags == 1,
        image_paths=paths,
        centers=centers,
        scales=scales,
        source=str(coco.path),
        areas=areas,
    )


def _area(ann: dict) -> float:
    """A person's ``area`` (OKS's scale s²), else its ``bbox`` w × h, else NaN (unknown)."""
    area = ann.get("area")
    if isinstance(area, (int, float)) and not isinstance(area, bool) and area > 0:
        return float(area)
    return float(ann["bbox"][2] * ann["bbox"][3]) if "bbox" in ann else float("nan")
