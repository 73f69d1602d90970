"""pycocotools' COCOeval(iouType="keypoints") on arrays: the reference of eglpp.pose.oks."""

import contextlib
import io

import numpy as np
import pycocotools.cocoeval
from pycocotools.coco import COCO


def cocoeval_ap(case: dict, max_dets: int) -> np.ndarray:
    """(10,) COCOeval(iouType="keypoints")'s AP at each OKS threshold, area range "all"."""
    J = case["gt"].shape[1]
    images = sorted(set(case["gt_images"].tolist()) | set(case["pred_images"].tolist()))
    anns = []
    for k, (xy, vis, area, image) in enumerate(
        zip(case["gt"], case["visible"], case["areas"], case["gt_images"], strict=True)
    ):
        kp = np.concatenate([xy, 2.0 * vis[:, None]], axis=1).ravel()
        lo, hi = xy[vis].min(0), xy[vis].max(0)
        anns.append({"id": k + 1, "image_id": int(image), "category_id": 1, "iscrowd": 0,
                     "keypoints": kp.tolist(), "num_keypoints": int(vis.sum()),
                     "area": float(area), "bbox": [*lo, *(hi - lo + 1)]})  # fmt: skip
    gt = COCO()
    gt.dataset = {"images": [{"id": int(i)} for i in images], "annotations": anns,
                  "categories": [{"id": 1, "name": "person", "keypoints": [str(j) for j in
                                                                           range(J)]}]}  # fmt: skip
    results = [{"image_id": int(image), "category_id": 1, "score": float(score),
                "keypoints": np.concatenate([xy, np.ones((J, 1))], axis=1).ravel().tolist()}
               for xy, score, image in zip(case["pred"], case["scores"], case["pred_images"],
                                           strict=True)]  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        ev = pycocotools.cocoeval.COCOeval(gt, gt.loadRes(results), iouType="keypoints")
        ev.params.kpt_oks_sigmas = case["sigmas"]
        ev.params.maxDets = [max_dets]
        ev.evaluate()
        ev.accumulate()
    precision = ev.eval["precision"][:, :, 0, 0, 0]  # (T, R), area range "all"
    assert (precision > -1).all()
    return precision.mean(axis=1)
