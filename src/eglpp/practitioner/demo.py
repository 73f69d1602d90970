"""Demo data for the practitioner's loop: rendered people written as a user's files would be.

:func:`write_demo_data` writes, into one folder,

- ``labelled_images/person_NNN.jpg`` and ``labelled.json``: the labelled set, COCO keypoints
  (LSP's 14 joints, or with ``skeleton="coco17"`` COCO's 17: :func:`coco17_of_lsp`) whose
  ``file_name`` values are relative to the file's folder;
- ``pool/pool_NNN.jpg``: the unlabelled pool, a folder of person crops;
- ``pool_truth.json``: the pool's true keypoints (COCO), which a real user does not have: it
  stands in for the annotator (:func:`~eglpp.practitioner.demo_annotate.simulate_annotation`,
  re-exported here).

The images are rendered people (:mod:`eglpp.pose.datasets.synthetic`),
deterministic from the seed; every box is the whole image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from eglpp.io import atomic_write_json
from eglpp.pose.datasets.synthetic import RenderConfig, SyntheticPoseDataset
from eglpp.pose.skeleton import COCO17, LSP, Skeleton
from eglpp.practitioner.coco import (
    BOX_SCALE,
    coco_document,
    crop_to_bbox,
    keypoint_entry,
)
from eglpp.practitioner.demo_annotate import simulate_annotation
from eglpp.seeds import stable_seed

__all__ = ["write_demo_data", "simulate_annotation", "coco17_of_lsp", "DEMO_SKELETONS"]

#: The skeletons ``eglpp demo-data --skeleton`` writes.
DEMO_SKELETONS = {"lsp": LSP, "coco17": COCO17}


def _write_images(data: SyntheticPoseDataset, folder: Path, prefix: str) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(len(data.images)):
        name = f"{prefix}_{i:03d}.jpg"
        Image.fromarray(data.images[i].permute(1, 2, 0).numpy()).save(folder / name, quality=95)
        names.append(name)
    return names


def coco17_of_lsp(
    joints: np.ndarray, flags: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """COCO-17 keypoints (N, 17, 2) and flags (N, 17) of rendered LSP people (N, 14, 2), (N, 14).

    The 12 limb joints are LSP's own; the five face points, which the renderer has no joints
    for, sit on its head (a disc whose top is ``head_top``), placed from the neck → head-top
    axis of length L: the nose 0.35 L below the head top, the eyes 0.2 L below it and ±0.12 L
    across, the ears 0.25 L below it and ±0.28 L across, "left" on the side of the left
    shoulder. They take the smaller flag of neck and head top (0 outside the ``size``² image).
    """
    N = len(joints)
    out = np.zeros((N, COCO17.n_joints, 2))
    out_flags = np.zeros((N, COCO17.n_joints), np.int64)
    for name in COCO17.joints:
        if name in LSP.joints:
            out[:, COCO17.index(name)] = joints[:, LSP.index(name)]
            out_flags[:, COCO17.index(name)] = flags[:, LSP.index(name)]
    top, neck = joints[:, LSP.index("head_top")], joints[:, LSP.index("neck")]
    axis = top - neck
    length = np.maximum(np.linalg.norm(axis, axis=1, keepdims=True), 1e-9)
    down = -axis / length
    across = np.stack([-down[:, 1], down[:, 0]], axis=1)  # perpendicular to the head axis
    shoulders = joints[:, LSP.index("left_shoulder")] - joints[:, LSP.index("right_shoulder")]
    across *= np.where(np.sum(across * shoulders, axis=1, keepdims=True) < 0, -1.0, 1.0)
    face_flag = np.minimum(flags[:, LSP.index("head_top")], flags[:, LSP.index("neck")])
    face = {"nose": (0.35, 0.0), "left_eye": (0.2, 0.12), "right_eye": (0.2, -0.12),
            "left_ear": (0.25, 0.28), "right_ear": (0.25, -0.28)}  # fmt: skip
    for name, (below, side) in face.items():
        xy = top + length * (below * down + side * across)
        inside = np.all((xy >= -0.5) & (xy <= size - 0.5), axis=1)
        out[:, COCO17.index(name)] = np.round(xy, 2)
        out_flags[:, COCO17.index(name)] = np.where(inside, face_flag, 0)
    out[out_flags == 0] = 0.0
    return out, out_flags


def _coco(
    data: SyntheticPoseDataset, file_names: list[str], what: str, skeleton: Skeleton = LSP
) -> dict:
    """The COCO keypoints document of a rendering (one person per image, the whole image its
    box; v = 1 for occluded joints, 2 for visible ones, 0 for joints outside the image)."""
    S = data.config.size
    box = crop_to_bbox(((S - 1) / 2, (S - 1) / 2), S, BOX_SCALE)
    joints = data.joints
    flags = np.where(data.visible, np.where(data.occluded, 1, 2), 0)
    if skeleton is COCO17:
        joints, flags = coco17_of_lsp(joints, flags, S)
    images, annotations = [], []
    for k, name in enumerate(file_names):
        images.append({"id": k + 1, "file_name": name, "width": S, "height": S})
        annotations.append(keypoint_entry(k + 1, k + 1, joints[k], flags[k], box))
    info = {"description": f"eglpp demo data: {what}"}
    return coco_document(images, annotations, skeleton, info)


def write_demo_data(
    out: str | Path,
    *,
    n_labelled: int = 1000,
    n_pool: int = 400,
    size: int = 64,
    seed: int = 0,
    skeleton: str = "lsp",
) -> dict:
    """Write the demo folder (see the module docstring); returns what was written.

    The labelled set and the pool are rendered from different seeds (``stable_seed(seed,
    "labelled")``, ``"pool"``) in the same appearance domain (``"lsp"``).
    """
    for name, value, least in (("n_labelled", n_labelled, 2), ("n_pool", n_pool, 1),
                               ("size", size, 16)):  # fmt: skip
        if value < least:
            raise ValueError(f"--{name.replace('_', '-')} {value}: must be >= {least}")
    if skeleton not in DEMO_SKELETONS:
        raise ValueError(f"--skeleton {skeleton!r}: expected one of {', '.join(DEMO_SKELETONS)}")
    kind = DEMO_SKELETONS[skeleton]
    out = Path(out)
    config = RenderConfig(size=size, domain="lsp")
    labelled = SyntheticPoseDataset(n_labelled, config, seed=stable_seed(seed, "labelled"))
    pool = SyntheticPoseDataset(n_pool, config, seed=stable_seed(seed, "pool"))
    lab_names = _write_images(labelled, out / "labelled_images", "person")
    pool_names = _write_images(pool, out / "pool", "pool")
    lab_names = [f"labelled_images/{n}" for n in lab_names]
    lab_doc = _coco(labelled, lab_names, "the labelled set", kind)
    atomic_write_json(out / "labelled.json", lab_doc)
    truth = _coco(pool, [f"pool/{n}" for n in pool_names], "the pool's truth (the annotator)", kind)
    atomic_write_json(out / "pool_truth.json", truth)
    return {
        "labelled": str(out / "labelled.json"),
        "pool": str(out / "pool"),
        "truth": str(out / "pool_truth.json"),
        "n_labelled": n_labelled,
        "n_pool": n_pool,
        "size": size,
        "skeleton": skeleton,
    }
