"""The demo's annotator: :func:`simulate_annotation` answers a selection (``selection_coco.json``
of ``eglpp select``) as an annotation tool's export would: the same images and person boxes,
the keypoints from the ``pool_truth.json`` of :func:`eglpp.practitioner.demo.write_demo_data`.
It reads and writes COCO files only (no torch: ``eglpp demo-annotate`` starts fast).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from eglpp.io import atomic_write_json
from eglpp.practitioner.coco import coco_document, image_root, keypoint_entry, read_coco

__all__ = ["simulate_annotation"]


def simulate_annotation(selection: str | Path, truth: str | Path, out: str | Path) -> dict:
    """Write ``out``: the COCO export an annotator would return for ``selection`` (an ``eglpp
    select`` folder or its ``selection_coco.json``), with the keypoints of ``truth``
    (``pool_truth.json``; images matched by their resolved path)."""
    selection = Path(selection)
    sel_path = selection / "selection_coco.json" if selection.is_dir() else selection
    sel = read_coco(sel_path, require_keypoints=False)
    known = read_coco(truth)
    root = image_root(known)
    by_path = {(root / im["file_name"]).resolve(): im["id"] for im in known.images}
    person = {a["image_id"]: a for a in known.annotations}
    sel_root = image_root(sel)
    boxes = {a["image_id"]: a.get("bbox") for a in sel.annotations}
    images, annotations = [], []
    for im in sel.images:
        path = Path(im.get("eglpp_path") or sel_root / im["file_name"]).resolve()
        if path not in by_path:
            raise ValueError(f"{sel_path}: {im['file_name']} is not an image of {truth}")
        kp = np.asarray(person[by_path[path]]["keypoints"], np.float64).reshape(-1, 3)
        joints, flags = np.zeros_like(kp[:, :2]), np.zeros(len(kp), np.int64)
        joints[known.order], flags[known.order] = kp[:, :2], kp[:, 2]  # the skeleton's order
        images.append({k: im[k] for k in ("id", "file_name", "width", "height") if k in im})
        annotations.append(keypoint_entry(im["id"], im["id"], joints, flags, boxes.get(im["id"])))
    info = {"description": "simulated annotation"}
    doc = coco_document(images, annotations, known.skeleton, info)
    atomic_write_json(out, doc)
    return {"images": len(images), "out": str(out)}
