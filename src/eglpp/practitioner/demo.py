"""Demo data for the practitioner's loop: rendered people written as a user's files would be.

:func:`write_demo_data` writes, into one folder,

- ``labelled_images/person_NNN.jpg`` and ``labelled.json``: the labelled set, COCO keypoints
  (LSP's 14 joints) whose ``file_name`` values are relative to the file's folder;
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
from eglpp.pose.skeleton import LSP
from eglpp.practitioner.coco import (
    BOX_SCALE,
    coco_document,
    crop_to_bbox,
    keypoint_entry,
)
from eglpp.practitioner.demo_annotate import simulate_annotation
from eglpp.seeds import stable_seed

__all__ = ["write_demo_data", "simulate_annotation"]


def _write_images(data: SyntheticPoseDataset, folder: Path, prefix: str) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(len(data.images)):
        name = f"{prefix}_{i:03d}.jpg"
        Image.fromarray(data.images[i].permute(1, 2, 0).numpy()).save(folder / name, quality=95)
        names.append(name)
    return names


def _coco(data: SyntheticPoseDataset, file_names: list[str], what: str) -> dict:
    """The COCO keypoints document of a rendering (one person per image, the whole image its
    box; v = 1 for occluded joints, 2 for visible ones, 0 for joints outside the image)."""
    S = data.config.size
    box = crop_to_bbox(((S - 1) / 2, (S - 1) / 2), S, BOX_SCALE)
    images, annotations = [], []
    for k, name in enumerate(file_names):
        images.append({"id": k + 1, "file_name": name, "width": S, "height": S})
        flags = np.where(data.visible[k], np.where(data.occluded[k], 1, 2), 0)
        annotations.append(keypoint_entry(k + 1, k + 1, data.joints[k], flags, box))
    return coco_document(images, annotations, LSP, {"description": f"eglpp demo data: {what}"})


def write_demo_data(
    out: str | Path, *, n_labelled: int = 1000, n_pool: int = 400, size: int = 64, seed: int = 0
) -> dict:
    """Write the demo folder (see the module docstring); returns what was written.

    The labelled set and the pool are rendered from different seeds (``stable_seed(seed,
    "labelled")``, ``"pool"``) in the same appearance domain (``"lsp"``).
    """
    for name, value, least in (("n_labelled", n_labelled, 2), ("n_pool", n_pool, 1),
                               ("size", size, 16)):  # fmt: skip
        if value < least:
            raise ValueError(f"--{name.replace('_', '-')} {value}: must be >= {least}")
    out = Path(out)
    config = RenderConfig(size=size, domain="lsp")
    labelled = SyntheticPoseDataset(n_labelled, config, seed=stable_seed(seed, "labelled"))
    pool = SyntheticPoseDataset(n_pool, config, seed=stable_seed(seed, "pool"))
    lab_names = _write_images(labelled, out / "labelled_images", "person")
    pool_names = _write_images(pool, out / "pool", "pool")
    lab_doc = _coco(labelled, [f"labelled_images/{n}" for n in lab_names], "the labelled set")
    atomic_write_json(out / "labelled.json", lab_doc)
    truth = _coco(pool, [f"pool/{n}" for n in pool_names], "the pool's truth (the annotator)")
    atomic_write_json(out / "pool_truth.json", truth)
    return {
        "labelled": str(out / "labelled.json"),
        "pool": str(out / "pool"),
        "truth": str(out / "pool_truth.json"),
        "n_labelled": n_labelled,
        "n_pool": n_pool,
        "size": size,
    }
