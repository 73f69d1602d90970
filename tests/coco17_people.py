"""A COCO-17 keypoints file of rendered people (tests/pose/test_oks_evaluate.py,
tests/loop/test_coco_run.py): LSP's 12 limb joints under COCO's names, the face unlabelled."""

import json
from pathlib import Path

import numpy as np
from PIL import Image

from eglpp.pose.datasets.synthetic import RenderConfig, SyntheticPoseDataset
from eglpp.pose.skeleton import COCO17, LSP
from eglpp.practitioner.coco import coco_category

LIMBS = {name: LSP.index(name) for name in LSP.joints if name in COCO17.joints}


def write_coco17(folder: Path, n_images: int = 8, size: int = 32, image_folder: Path | None = None,
                 seed: int = 4) -> tuple[Path, dict]:
    """Rendered people as COCO-17 (LSP's 12 limb joints, the face unlabelled), each with a
    box around its keypoints; a shifted second person on three images; ``area`` given for
    half of them (else the box's w × h counts). The images go to ``image_folder`` (default:
    ``folder``, the file's), the file names them relative to it."""
    images_dir = folder if image_folder is None else image_folder
    images_dir.mkdir(parents=True, exist_ok=True)
    data = SyntheticPoseDataset(n_images, RenderConfig(size=size, domain="lsp"), seed=seed)
    images, anns = [], []
    for i in range(n_images):
        name = f"im{i:02d}.jpg"
        Image.fromarray(data.images[i].permute(1, 2, 0).numpy()).save(images_dir / name)
        images.append({"id": i + 1, "file_name": name})
        for shift in [(0.0, 0.0)] + ([(2.0, 1.0)] if i % 3 == 0 else []):
            kp = np.zeros((17, 3))
            for coco_name, j in LIMBS.items():
                if data.visible[i, j]:
                    kp[COCO17.index(coco_name)] = [*(data.joints[i, j] + shift), 2]
            lo, hi = kp[kp[:, 2] > 0, :2].min(0), kp[kp[:, 2] > 0, :2].max(0)
            box = [*(lo - 2), *(hi - lo + 4)]
            ann = {"id": len(anns) + 1, "image_id": i + 1, "category_id": 1, "bbox": box,
                   "keypoints": [round(float(v), 3) for v in kp.ravel()]}  # fmt: skip
            if len(anns) % 2 == 0:
                ann["area"] = round(0.6 * box[2] * box[3], 2)
            anns.append(ann)
    doc = {"images": images, "annotations": anns, "categories": [coco_category(COCO17)]}
    path = folder / "people.json"
    path.write_text(json.dumps(doc))
    return path, doc
