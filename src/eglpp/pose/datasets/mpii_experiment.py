"""MPII's training and validation people for an experiment: whichever official file is there."""

from __future__ import annotations

import os
from pathlib import Path

from eglpp.pose.datasets.base import PoseAnnotations
from eglpp.pose.datasets.mpii import load_mpii_mat, split_people
from eglpp.pose.datasets.mpii_json import load_mpii_json

__all__ = ["load_mpii_experiment"]


def load_mpii_experiment(
    root: str | os.PathLike,
    *,
    valid_images: str | os.PathLike | None = None,
    check_images: bool = True,
) -> tuple[PoseAnnotations, PoseAnnotations]:
    """Training and validation people of MPII under ``root``, images in ``root/images``.

    Looks for, in this order: ``annot/train.json`` with ``annot/valid.json`` (the JSON
    conversion's own split; validation head boxes from ``annot/gt_valid.mat`` when present);
    ``trainval.json`` or ``annot/trainval.json``; ``mpii_human_pose_v1_u12_1.mat`` (also under
    ``mpii_human_pose_v1_u12_2/``). The last two are split by ``valid_images`` (default
    ``root/mpii_newell_validation_images.txt``, Newell et al.'s validation images).
    """
    root = Path(root)
    images = root / "images"
    common = dict(images_dir=images, check_images=check_images)
    annot = root / "annot"
    if (annot / "train.json").is_file() and (annot / "valid.json").is_file():
        gt = annot / "gt_valid.mat"
        train = load_mpii_json(annot / "train.json", **common)
        valid = load_mpii_json(
            annot / "valid.json", head_boxes_mat=gt if gt.is_file() else None, **common
        )
        return train, valid
    candidates = [
        root / "trainval.json",
        annot / "trainval.json",
        root / "mpii_human_pose_v1_u12_1.mat",
        root / "mpii_human_pose_v1_u12_2" / "mpii_human_pose_v1_u12_1.mat",
    ]
    found = [p for p in candidates if p.is_file()]
    if not found:
        raise FileNotFoundError(
            f"{root}: no MPII annotations (looked for annot/train.json + annot/valid.json, "
            + ", ".join(str(p.relative_to(root)) for p in candidates)
            + ")"
        )
    split_file = Path(valid_images or root / "mpii_newell_validation_images.txt")
    path = found[0]
    if path.suffix == ".json":
        everyone = load_mpii_json(path, **common)
    else:
        everyone = load_mpii_mat(path, **common)
    names = [p.name for p in everyone.image_paths]
    halves = [
        everyone.subset(split_people(names, set(names), s, split_file, None, str(path)))
        for s in ("train", "valid")
    ]
    return halves[0], halves[1]
