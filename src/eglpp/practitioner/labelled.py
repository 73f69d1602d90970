"""The labelled set of ``eglpp select`` / ``eglpp import``: COCO keypoints or an official format.

:func:`load_labelled` reads a COCO keypoints JSON (:mod:`eglpp.practitioner.coco`), an LSP or
LSPET ``joints.mat`` (or its folder), an MPII ``.mat`` release (or its folder) or the MPII JSON
conversion, and returns :class:`LabelledSet`: the annotations plus one display name per person.
:func:`to_coco_entries` turns annotations into COCO ``images``/``annotations`` entries, so that
an LSP/MPII labelled set can be merged with returned COCO annotations.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eglpp.io import read_json
from eglpp.pose.datasets import load_lsp, load_lspet, load_mpii_json, load_mpii_mat
from eglpp.pose.datasets.base import (
    AnnotationError,
    PoseAnnotations,
    check_joints_inside,
    image_size,
    read_mat,
)
from eglpp.practitioner.coco import (
    BOX_SCALE,
    CocoFile,
    coco_to_annotations,
    crop_to_bbox,
    keypoint_entry,
    read_coco,
)

__all__ = [
    "LabelledSet",
    "load_labelled",
    "check_labelled_joints",
    "to_coco_entries",
    "image_size",
    "relative_name",
]


@dataclass(frozen=True)
class LabelledSet:
    """Annotations of the labelled people and how to name them."""

    annotations: PoseAnnotations
    names: list[str]  # (N,) e.g. the COCO file_name, for tables and pictures
    coco: CocoFile | None  # the parsed file when the set came from COCO
    format: str  # "coco" | "lsp" | "lspet" | "mpii"


def _mat_kind(path: Path) -> str:

    mat = read_mat(path)
    if "RELEASE" in mat:
        return "mpii"
    if "joints" in mat:
        return "lsp" if np.shape(mat["joints"])[0] == 3 else "lspet"
    found = ", ".join(k for k in mat if not k.startswith("__")) or "none"
    raise AnnotationError(
        f"{path}: neither an LSP/LSPET joints.mat ('joints') nor an MPII release ('RELEASE'); "
        f"variables found: {found}"
    )


def load_labelled(
    path: str | Path,
    *,
    images_root: str | Path | None = None,
    box_scale: float = BOX_SCALE,
) -> LabelledSet:
    """Read a labelled set in any supported format (see the module docstring).

    Raises FileNotFoundError for a missing path and AnnotationError (a ValueError) naming the
    file and field for bad content.
    """

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"--labelled {path}: no such file or folder")
    if path.is_dir():
        if (path / "mpii_human_pose_v1_u12_1.mat").is_file():
            path = path / "mpii_human_pose_v1_u12_1.mat"
        elif (path / "joints.mat").is_file():
            path = path / "joints.mat"
        else:
            raise FileNotFoundError(
                f"--labelled {path}: folder holds neither joints.mat (LSP/LSPET) nor "
                "mpii_human_pose_v1_u12_1.mat (MPII); give a COCO keypoints .json or a file"
            )
    if path.suffix.lower() == ".json":
        data = read_json(path)
        if isinstance(data, dict) and "images" in data and "annotations" in data:
            coco = read_coco(path)
            ann = coco_to_annotations(coco, images_root=images_root, box_scale=box_scale)
            names = [coco.image_by_id()[a["image_id"]]["file_name"] for a in coco.annotations]
            return LabelledSet(ann, names, coco, "coco")
        ann, kind = load_mpii_json(path, "all", images_dir=images_root), "mpii"
    elif path.suffix.lower() == ".mat":
        kind = _mat_kind(path)
        if kind == "mpii":
            ann = load_mpii_mat(path, "all", images_dir=images_root)
        else:
            load = load_lsp if kind == "lsp" else load_lspet
            ann = load(path, "all", images_dir=images_root)
    else:
        raise AnnotationError(
            f"--labelled {path}: expected a COCO keypoints .json, a joints.mat / MPII .mat, "
            "an MPII .json or a dataset folder"
        )
    return LabelledSet(ann, [p.name for p in ann.image_paths], None, kind)


def check_labelled_joints(lab: LabelledSet) -> None:
    """Refuse labelled people whose joints lie far outside their image (header sizes; an image
    that does not read is left to the error that names it when it is used)."""
    where = "annotations" if lab.format == "coco" else "person"
    check_joints_inside(
        lab.annotations,
        [image_size(p) for p in lab.annotations.image_paths],
        [f"{where}[{k}] (image {name})" for k, name in enumerate(lab.names)],
    )


def relative_name(path: Path, folder: Path) -> str:
    """``path`` relative to ``folder`` (with ``..`` where needed), POSIX separators."""
    return Path(os.path.relpath(Path(path).resolve(), Path(folder).resolve())).as_posix()


def to_coco_entries(
    ann: PoseAnnotations,
    out_dir: Path,
    *,
    first_image_id: int = 1,
    first_ann_id: int = 1,
    box_scale: float = BOX_SCALE,
) -> tuple[list[dict], list[dict]]:
    """COCO ``images`` (one per distinct file, named relative to ``out_dir``) and
    ``annotations`` (one per person, in ``ann.skeleton``'s joint order)."""
    if ann.image_paths is None:
        raise ValueError(f"{ann.source}: annotations carry no image paths")
    images: list[dict] = []
    ids: dict[Path, int] = {}
    annotations = []
    for k, path in enumerate(ann.image_paths):
        if path not in ids:
            ids[path] = first_image_id + len(images)
            entry = {"id": ids[path], "file_name": relative_name(path, out_dir)}
            size = image_size(path)
            if size is not None:
                entry["width"], entry["height"] = size
            images.append(entry)
        flags = np.where(ann.visible[k], np.where(ann.occluded[k], 1, 2), 0)
        bbox = None
        if ann.centers is not None and ann.scales is not None:
            c, s = ann.centers[k], ann.scales[k]
            if np.isfinite(c).all() and np.isfinite(s).all():
                bbox = crop_to_bbox(c, 200.0 * s, box_scale)
        annotations.append(keypoint_entry(first_ann_id + k, ids[path], ann.joints[k], flags, bbox))
    return images, annotations
