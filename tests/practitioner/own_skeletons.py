"""COCO-17 and a 6-keypoint animal made of the renderer's LSP ground truth, as COCO files."""

import json
from pathlib import Path

import numpy as np
from conftest import truth_keypoints, whole_image_bbox

from eglpp.pose.skeleton import COCO17, LSP

#: The animal: each keypoint is one LSP joint of the rendered people under another name.
ANIMAL = {"snout": "head_top", "left_forepaw": "left_wrist", "right_forepaw": "right_wrist",
          "withers": "neck", "left_hindpaw": "left_ankle",
          "right_hindpaw": "right_ankle"}  # fmt: skip
ANIMAL_LIMBS = [[1, 4], [2, 4], [3, 4], [4, 5], [4, 6]]  # COCO's 1-based pairs
#: COCO-17's face points, placed between LSP's neck and head top (weight of head_top).
FACE = {"nose": 0.4, "left_eye": 0.6, "right_eye": 0.6, "left_ear": 0.5, "right_ear": 0.5}
FACE_SHIFT = {"left_eye": 1.0, "right_eye": -1.0, "left_ear": 2.0, "right_ear": -2.0}


def own_keypoints(kind: str, data, i: int) -> np.ndarray:
    """(J, 3) x, y, v of rendered person i in skeleton ``kind`` ("coco17" or "animal")."""
    lsp = np.asarray(truth_keypoints(data, i)).reshape(LSP.n_joints, 3)

    def joint(name):
        return lsp[LSP.index(name)]

    if kind == "animal":
        return np.stack([joint(lsp_name) for lsp_name in ANIMAL.values()])
    out = []
    for name in COCO17.joints:
        if name in FACE:
            head, neck = joint("head_top"), joint("neck")
            w = FACE[name]
            xy = w * head[:2] + (1 - w) * neck[:2] + [FACE_SHIFT.get(name, 0.0), 0.0]
            v = min(head[2], neck[2])
            out.append([*np.round(xy, 2), v] if v > 0 else [0.0, 0.0, 0.0])
        else:
            out.append(joint(name))
    return np.asarray(out, np.float64)


def category(kind: str) -> dict:
    if kind == "coco17":
        limbs = [[a + 1, b + 1] for a, b in COCO17.limbs]
        return {"id": 1, "name": "person", "keypoints": list(COCO17.joints), "skeleton": limbs}
    return {"id": 1, "name": "animal", "keypoints": list(ANIMAL), "skeleton": ANIMAL_LIMBS}


def write_own(path: Path, kind: str, file_names, data, indices) -> Path:
    """A COCO file of ``kind`` with one whole-image box per rendered person."""
    images, anns = [], []
    for k, i in enumerate(indices):
        images.append({"id": k + 1, "file_name": file_names[k]})
        kp = own_keypoints(kind, data, i)
        anns.append({"id": k + 1, "image_id": k + 1, "category_id": 1, "bbox": whole_image_bbox(),
                     "keypoints": [float(v) for v in kp.ravel()]})  # fmt: skip
    path.write_text(json.dumps({"images": images, "annotations": anns,
                                "categories": [category(kind)]}))  # fmt: skip
    return path
