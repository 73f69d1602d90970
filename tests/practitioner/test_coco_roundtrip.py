"""Property tests: a COCO keypoints file reads back as written, in any joint order and naming.

Annotation tools name and order the keypoints their own way; the reader matches them to the
LSP or MPII skeleton by name. Each example writes people with the file's joints in a random
order, each name in a random spelling, with random visibility flags and boxes, and checks the
annotations against the conventions worked out here: joint k of the file is skeleton joint
``order[k]``; v = 0 not labelled, 1 labelled but occluded, 2 labelled and visible; a box's crop
is centred at (x + w/2 − 0.5, y + h/2 − 0.5) with side 1.25 · max(w, h). Writing the annotations
back as COCO (``to_coco_entries``, as ``eglpp import`` does) and reading them again changes
nothing.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from eglpp.pose.skeleton import LSP, MPII
from eglpp.practitioner.coco import coco_to_annotations, read_coco
from eglpp.practitioner.labelled import to_coco_entries

EXAMPLES = settings(max_examples=40, deadline=None)

SPELLINGS = ("as is", "upper", "spaces", "hyphens", "short side", "side last")


def spell(name: str, style: str) -> str:
    """``name`` as a tool might write it (all of these must match the same joint)."""
    side, _, part = name.partition("_")
    sided = side in ("left", "right")
    if style == "upper":
        return name.upper()
    if style == "spaces":
        return name.replace("_", " ").title()
    if style == "hyphens":
        return name.replace("_", "-")
    if style == "short side" and sided:
        return f"{side[0]}_{part}"
    if style == "side last" and sided:
        return f"{part}_{side}"
    return name


@st.composite
def coco_people(draw):
    skeleton = draw(st.sampled_from([LSP, MPII]))
    J = skeleton.n_joints
    order = np.array(draw(st.permutations(range(J))))  # file joint k = skeleton joint order[k]
    names = [spell(skeleton.joints[j], draw(st.sampled_from(SPELLINGS))) for j in order]
    n = draw(st.integers(1, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    xy = np.round(rng.uniform(0.0, 300.0, size=(n, J, 2)), 2)  # in the file's joint order
    v = rng.integers(0, 3, size=(n, J))
    v[np.arange(n), rng.integers(0, J, size=n)] = 2  # at least one labelled joint each
    boxes = [
        [round(float(b), 2) for b in (*rng.uniform(0, 100, 2), *rng.uniform(5, 200, 2))]
        if draw(st.booleans()) else None
        for _ in range(n)
    ]  # fmt: skip
    return skeleton, order, names, xy, v, boxes


def _document(names, xy, v, boxes) -> dict:
    images = [{"id": 10 + i, "file_name": f"img/p{i}.jpg"} for i in range(len(xy))]
    anns = []
    for i in range(len(xy)):
        kp = np.concatenate([np.where(v[i, :, None] > 0, xy[i], 0.0), v[i, :, None]], axis=1)
        ann = {
            "id": 100 + i,
            "image_id": 10 + i,
            "category_id": 1,
            "keypoints": kp.ravel().tolist(),
        }
        if boxes[i] is not None:
            ann["bbox"] = boxes[i]
        anns.append(ann)
    return {"images": images, "annotations": anns,
            "categories": [{"id": 1, "name": "person", "keypoints": names}]}  # fmt: skip


@EXAMPLES
@given(people=coco_people())
def test_coco_reads_back_in_the_skeleton_order(people):
    skeleton, order, names, xy, v, boxes = people
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "labels.json"
        path.write_text(json.dumps(_document(names, xy, v, boxes)))
        coco = read_coco(path)
        ann = coco_to_annotations(coco)
        assert coco.skeleton is skeleton and coco.order.tolist() == order.tolist()
        labelled = v > 0
        np.testing.assert_array_equal(ann.visible[:, order], labelled)
        np.testing.assert_array_equal(ann.occluded[:, order], v == 1)
        np.testing.assert_allclose(ann.joints[:, order][labelled], xy[labelled], atol=1e-4)
        assert np.all(ann.joints[:, order][~labelled] == 0)
        assert ann.image_paths == [Path(tmp) / "img" / f"p{i}.jpg" for i in range(len(xy))]
        for i, box in enumerate(boxes):
            if box is None:
                assert np.isnan(ann.centers[i]).all() and np.isnan(ann.scales[i]).all()
                continue
            x, y, w, h = box
            np.testing.assert_allclose(ann.centers[i], [x + w / 2 - 0.5, y + h / 2 - 0.5], 1e-5)
            np.testing.assert_allclose(ann.scales[i], [1.25 * w / 200, 1.25 * h / 200], rtol=1e-5)

        images, entries = to_coco_entries(ann, Path(tmp))
        again = {"images": images, "annotations": entries,
                 "categories": [{"id": 1, "keypoints": list(skeleton.joints)}]}  # fmt: skip
        (Path(tmp) / "again.json").write_text(json.dumps(again))
        back = coco_to_annotations(read_coco(Path(tmp) / "again.json"))
        for field in ("visible", "occluded"):
            np.testing.assert_array_equal(getattr(back, field), getattr(ann, field))
        np.testing.assert_allclose(back.joints, ann.joints, atol=0.006)  # written to 0.01 px
        np.testing.assert_allclose(back.centers, ann.centers, atol=0.01)
        np.testing.assert_allclose(back.scales, ann.scales, atol=1e-3)
        assert back.image_paths == ann.image_paths
